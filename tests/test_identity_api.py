"""The embedded Keystone v3 login calls at /identity: discovery and /v3/auth/tokens."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from imageservice.identity.models import ApiToken, LoginFailure
from imageservice.identity.services import ensure_user, issue_token
from imageservice.identity.tokens import hash_token

TOKENS = "/identity/v3/auth/tokens"
NOW = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
DEFAULT_DOMAIN = {"id": "default", "name": "Default"}
UNAUTHORIZED = {
    "error": {
        "code": 401,
        "title": "Unauthorized",
        "message": "The request you have made requires authentication.",
    }
}
VERSION_V3 = {
    "id": "v3.14",
    "status": "stable",
    "updated": "2020-04-07T00:00:00Z",
    "links": [{"rel": "self", "href": "http://testserver/identity/v3/"}],
    "media-types": [
        {"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}
    ],
}


@pytest.fixture
def clock(monkeypatch):
    """timezone.now() frozen at NOW; ``clock.advance(seconds)`` moves it on."""

    class Clock:
        now = NOW

        def advance(self, seconds: float) -> None:
            self.now += timedelta(seconds=seconds)

    frozen = Clock()
    monkeypatch.setattr(timezone, "now", lambda: frozen.now)
    return frozen


@pytest.fixture
def passwords(personas) -> dict[str, str]:
    for persona in personas.values():
        persona.user.set_password(f"{persona.name}-secret")
        persona.user.save()
    return {name: f"{name}-secret" for name in personas}


def password_auth(user: dict, password: str, scope: object = None) -> dict:
    auth = {
        "identity": {"methods": ["password"], "password": {"user": {**user, "password": password}}}
    }
    if scope is not None:
        auth["scope"] = scope
    return {"auth": auth}


def by_name(persona, password: str, scope: object = None) -> dict:
    user = {"name": persona.name, "domain": {"name": "Default"}}
    return password_auth(user, password, scope)


def project_by_name(persona) -> dict:
    return {"project": {"name": persona.user.project.name, "domain": {"id": "default"}}}


def log_in(body: dict, **extra):
    return APIClient().post(TOKENS, data=json.dumps(body), content_type="application/json", **extra)


def endpoints(url: str) -> list[dict]:
    region = {"region": "RegionOne", "region_id": "RegionOne"}
    return [{"interface": name, **region, "url": url} for name in ("public", "internal", "admin")]


EXPECTED_CATALOG = [
    {"type": "image", "name": "glance", "endpoints": endpoints("http://testserver")},
    {"type": "identity", "name": "keystone", "endpoints": endpoints("http://testserver/identity")},
]


def without_ids(catalog: list[dict]) -> list[dict]:
    return [
        {
            **{key: value for key, value in service.items() if key != "id"},
            "endpoints": [
                {key: value for key, value in endpoint.items() if key != "id"}
                for endpoint in service["endpoints"]
            ],
        }
        for service in catalog
    ]


def ids_of(catalog: list[dict]) -> list[str]:
    return [item["id"] for service in catalog for item in [service, *service["endpoints"]]]


def test_v3_discovery_is_keystones_version_document(db):
    response = APIClient().get("/identity/v3")

    assert response.status_code == 200
    assert response.json() == {"version": VERSION_V3}


def test_identity_root_lists_v3_with_300_and_location(db):
    for path in ("/identity", "/identity/"):
        response = APIClient().get(path)

        assert response.status_code == 300
        assert response.json() == {"versions": {"values": [VERSION_V3]}}
        assert response["Location"] == "http://testserver/identity/v3/"


def test_discovery_uses_public_endpoint_when_set(db, settings):
    settings.PUBLIC_ENDPOINT = "https://cloud.example/"

    response = APIClient().get("/identity/v3")

    assert response.json()["version"]["links"] == [
        {"rel": "self", "href": "https://cloud.example/identity/v3/"}
    ]


def test_glance_routes_beside_identity_are_unchanged(db):
    client = APIClient()

    assert client.get("/versions").status_code == 200
    assert client.get("/").status_code == 300
    assert client.get("/identityx").status_code == 300
    for path in ("/identity/v3/users/abc", "/identity/v3/a%0Ab"):  # a newline too
        unknown = client.get(path)
        assert unknown.status_code == 404
        assert unknown.json() == {
            "error": {
                "code": 404,
                "title": "Not Found",
                "message": "The resource could not be found.",
            }
        }


def test_password_login_by_name_scoped_by_project_name(owner, passwords, clock):
    response = log_in(by_name(owner, passwords["owner"], project_by_name(owner)))

    assert response.status_code == 201
    raw_token = response["X-Subject-Token"]
    token = ApiToken.objects.get(digest=hash_token(raw_token))
    project = owner.user.project
    assert response.json() == {
        "token": {
            "methods": ["password"],
            "user": {
                "id": owner.user.keystone_id,
                "name": "owner",
                "domain": DEFAULT_DOMAIN,
                "password_expires_at": None,
            },
            "audit_ids": [response.json()["token"]["audit_ids"][0]],
            "expires_at": "2026-03-04T06:06:07.000000Z",
            "issued_at": "2026-03-04T05:06:07.000000Z",
            "project": {"id": project.id, "name": project.name, "domain": DEFAULT_DOMAIN},
            "is_domain": False,
            "roles": [{"id": str(role.pk), "name": role.name} for role in owner.user.roles.all()],
            "catalog": response.json()["token"]["catalog"],
        }
    }
    assert without_ids(response.json()["token"]["catalog"]) == EXPECTED_CATALOG
    assert len(response.json()["token"]["audit_ids"][0]) == 22
    assert (token.user, token.methods, token.project_scoped) == (owner.user, "password", True)
    assert token.expires_at == datetime(2026, 3, 4, 6, 6, 7, tzinfo=UTC)


def test_password_token_works_on_the_image_api(owner, passwords):
    raw_token = log_in(by_name(owner, passwords["owner"]))["X-Subject-Token"]

    created = APIClient(HTTP_X_AUTH_TOKEN=raw_token).post(
        "/v2/images", data=json.dumps({"name": "x"}), content_type="application/json"
    )

    assert created.status_code == 201
    assert created.json()["owner"] == owner.project_id


def test_password_login_by_user_id_scoped_by_project_id(owner, passwords):
    user = {"id": owner.user.keystone_id}
    scope = {"project": {"id": owner.project_id}}

    response = log_in(password_auth(user, passwords["owner"], scope))

    assert response.status_code == 201
    assert response.json()["token"]["project"]["id"] == owner.project_id
    assert response.json()["token"]["user"]["name"] == "owner"


def test_login_without_scope_gets_the_users_project_as_keystone_a_default_project(owner, passwords):
    response = log_in(by_name(owner, passwords["owner"]))

    assert response.status_code == 201
    assert response.json()["token"]["project"]["id"] == owner.project_id
    assert without_ids(response.json()["token"]["catalog"]) == EXPECTED_CATALOG


def test_explicitly_unscoped_token_has_no_project_roles_or_catalog(owner, passwords):
    response = log_in(by_name(owner, passwords["owner"], "unscoped"))

    assert response.status_code == 201
    body = response.json()["token"]
    assert set(body) == {"methods", "user", "audit_ids", "expires_at", "issued_at"}
    raw_token = response["X-Subject-Token"]
    assert ApiToken.objects.get(digest=hash_token(raw_token)).project_scoped is False
    # Without a project or roles the image API grants nothing, as with Keystone.
    listed = APIClient(HTTP_X_AUTH_TOKEN=raw_token).get("/v2/images")
    assert listed.status_code == 403


def test_nocatalog_leaves_the_catalog_out(owner, passwords):
    response = APIClient().post(
        f"{TOKENS}?nocatalog",
        data=json.dumps(by_name(owner, passwords["owner"])),
        content_type="application/json",
    )

    assert response.status_code == 201
    assert "catalog" not in response.json()["token"]
    assert response.json()["token"]["project"]["id"] == owner.project_id


def test_catalog_ids_are_keystone_like_and_the_same_on_every_login(owner, passwords):
    first = log_in(by_name(owner, passwords["owner"])).json()["token"]["catalog"]
    second = log_in(by_name(owner, passwords["owner"])).json()["token"]["catalog"]

    assert ids_of(first) == ids_of(second)
    assert len(set(ids_of(first))) == 8
    assert all(len(value) == 32 and int(value, 16) >= 0 for value in ids_of(first))


def test_catalog_urls_come_from_public_endpoint(owner, passwords, settings):
    settings.PUBLIC_ENDPOINT = "https://images.example:9292"
    settings.REGION_NAME = "north"

    body = log_in(by_name(owner, passwords["owner"])).json()

    endpoints = [e for service in body["token"]["catalog"] for e in service["endpoints"]]
    assert {e["url"] for e in endpoints} == {
        "https://images.example:9292",
        "https://images.example:9292/identity",
    }
    assert {e["region_id"] for e in endpoints} == {"north"}


def test_token_method_rescopes_and_keeps_the_first_expiry(owner, passwords, clock):
    first = log_in(by_name(owner, passwords["owner"], "unscoped"))
    clock.advance(600)

    response = log_in(
        {
            "auth": {
                "identity": {"methods": ["token"], "token": {"id": first["X-Subject-Token"]}},
                "scope": {"project": {"id": owner.project_id}},
            }
        }
    )

    assert response.status_code == 201
    body = response.json()["token"]
    assert body["methods"] == ["token", "password"]
    assert body["project"]["id"] == owner.project_id
    assert body["issued_at"] == "2026-03-04T05:16:07.000000Z"
    assert body["expires_at"] == first.json()["token"]["expires_at"]
    assert response["X-Subject-Token"] != first["X-Subject-Token"]


def test_token_method_with_an_unknown_token_is_404_as_keystone(db):
    body = {"auth": {"identity": {"methods": ["token"], "token": {"id": "nope"}}}}

    response = log_in(body)

    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": 404, "title": "Not Found", "message": "Could not find token: nope."}
    }


def test_wrong_password_is_401_in_keystones_shape(owner, passwords):
    response = log_in(by_name(owner, "wrong"))

    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED
    assert response["WWW-Authenticate"] == 'Keystone uri="http://testserver/identity/v3"'
    assert "X-Subject-Token" not in response
    assert LoginFailure.objects.filter(user=owner.user, address="127.0.0.1").count() == 1


@pytest.mark.parametrize(
    "user",
    [
        {"name": "nobody", "domain": {"name": "Default"}},
        {"name": "owner", "domain": {"name": "Elsewhere"}},
        {"id": "0" * 32},
    ],
    ids=["unknown-name", "other-domain", "unknown-id"],
)
def test_unknown_user_gets_the_same_401(passwords, user):
    response = log_in(password_auth(user, passwords["owner"]))

    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED


def test_user_without_a_usable_password_cannot_log_in(owner):
    response = log_in(by_name(owner, ""))

    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED


def test_inactive_user_cannot_log_in(owner, passwords):
    owner.user.is_active = False
    owner.user.save()

    response = log_in(by_name(owner, passwords["owner"]))

    assert response.status_code == 401


@pytest.mark.parametrize(
    "scope",
    [
        {"project": {"id": "another-project"}},
        {"project": {"name": "project-b", "domain": {"name": "Default"}}},
        {"project": {"name": "project-a", "domain": {"name": "Elsewhere"}}},
        {"domain": {"id": "default"}},
        {"system": {"all": True}},
    ],
    ids=["project-id", "project-name", "other-domain", "domain", "system"],
)
def test_scope_the_user_does_not_hold_is_401(owner, member, passwords, scope):
    response = log_in(by_name(owner, passwords["owner"], scope))

    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED
    assert not ApiToken.objects.filter(user=owner.user, methods="password").exists()


def test_unsupported_method_is_401_naming_the_supported_ones(owner):
    body = {"auth": {"identity": {"methods": ["totp"], "totp": {}}}}

    response = log_in(body)

    assert response.status_code == 401
    assert response.json() == {
        "error": {
            "code": 401,
            "title": "Unauthorized",
            "message": "Attempted to authenticate with an unsupported method.",
            "identity": {"methods": ["password", "token"]},
        }
    }


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"auth": {}}',
        b'{"auth": {"identity": {"methods": []}}}',
        b'{"auth": {"identity": {"methods": ["password"]}}}',
        b'{"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "x"}}}}}',
    ],
    ids=["not-json", "not-object", "no-identity", "no-methods", "no-password", "no-domain"],
)
def test_malformed_login_is_400(db, body):
    response = APIClient().post(TOKENS, data=body, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == 400
    assert response.json()["error"]["title"] == "Bad Request"


DECODING_ERROR = (
    "Error decoding your request. Either the URL or the request body contained characters "
    "that could not be decoded by Glance"
)
NAMED_USER = '{"auth": {"identity": {"methods": ["password"], "password": {"user": {%s}}}}}'


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[" * 100_000, "The request body is not valid JSON."),
        (
            NAMED_USER % '"name": "a\\ud800", "domain": {"name": "Default"}, "password": "x"',
            DECODING_ERROR,
        ),
        (
            NAMED_USER % '"name": "a\\u0000", "domain": {"name": "Default"}, "password": "x"',
            "Null characters are not allowed in the request.",
        ),
        (
            NAMED_USER % '"id": "\\ud800", "password": "x"',
            DECODING_ERROR,
        ),
    ],
    ids=["nested-100000-deep", "surrogate-in-name", "nul-in-name", "surrogate-in-id"],
)
def test_login_with_undecodable_or_unstorable_text_is_400_not_500(db, body, message):
    # These answered 500 (a RecursionError; the user lookup failing in the database).
    response = APIClient().post(TOKENS, data=body, content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {"error": {"code": 400, "title": "Bad Request", "message": message}}
    assert LoginFailure.objects.count() == 0


def test_user_validates_their_own_token(owner, passwords):
    raw_token = log_in(by_name(owner, passwords["owner"]))["X-Subject-Token"]

    response = APIClient().get(TOKENS, HTTP_X_AUTH_TOKEN=raw_token, HTTP_X_SUBJECT_TOKEN=raw_token)

    assert response.status_code == 200
    assert response["X-Subject-Token"] == raw_token
    body = response.json()["token"]
    assert (body["user"]["id"], body["project"]["id"]) == (owner.user.keystone_id, owner.project_id)
    assert without_ids(body["catalog"]) == EXPECTED_CATALOG


def test_admin_and_service_validate_others_tokens_but_a_user_may_not(owner, member, admin):
    service, _ = ensure_user("nova", None, [], is_service=True)
    _, service_token = issue_token(service)

    def validate(caller_token: str):
        return APIClient().get(
            TOKENS, HTTP_X_AUTH_TOKEN=caller_token, HTTP_X_SUBJECT_TOKEN=owner.token
        )

    assert validate(admin.token).status_code == 200
    assert validate(service_token).status_code == 200
    refused = validate(member.token)
    assert refused.status_code == 403
    assert refused.json() == {
        "error": {
            "code": 403,
            "title": "Forbidden",
            "message": "You are not authorized to perform the requested action: "
            "identity:validate_token.",
        }
    }


def test_validation_needs_a_valid_caller_token(owner):
    missing = APIClient().get(TOKENS, HTTP_X_SUBJECT_TOKEN=owner.token)
    wrong = APIClient().get(TOKENS, HTTP_X_AUTH_TOKEN="wrong", HTTP_X_SUBJECT_TOKEN=owner.token)

    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert wrong.json() == UNAUTHORIZED


def test_validating_an_unknown_token_is_404(owner):
    response = APIClient().get(TOKENS, HTTP_X_AUTH_TOKEN=owner.token, HTTP_X_SUBJECT_TOKEN="gone")

    assert response.status_code == 404
    assert response.json()["error"]["message"] == "Could not find token: gone."


def test_head_checks_a_token_without_a_body(owner, member):
    own = APIClient().head(TOKENS, HTTP_X_AUTH_TOKEN=owner.token, HTTP_X_SUBJECT_TOKEN=owner.token)
    other = APIClient().head(
        TOKENS, HTTP_X_AUTH_TOKEN=member.token, HTTP_X_SUBJECT_TOKEN=owner.token
    )

    assert own.status_code == 200
    assert own.content == b""
    assert own["X-Subject-Token"] == owner.token
    assert other.status_code == 403


def test_delete_revokes_at_once_even_where_the_token_was_cached(owner, passwords):
    raw_token = log_in(by_name(owner, passwords["owner"]))["X-Subject-Token"]
    client = APIClient(HTTP_X_AUTH_TOKEN=raw_token)
    assert client.get("/v2/images").status_code == 200  # now validated and cached

    response = client.delete(TOKENS, HTTP_X_SUBJECT_TOKEN=raw_token)

    assert response.status_code == 204
    assert ApiToken.objects.get(digest=hash_token(raw_token)).revoked_at is not None
    assert client.get("/v2/images").status_code == 401
    again = APIClient().get(TOKENS, HTTP_X_AUTH_TOKEN=owner.token, HTTP_X_SUBJECT_TOKEN=raw_token)
    assert again.status_code == 404


def test_user_may_not_revoke_another_users_token(owner, member):
    response = APIClient().delete(
        TOKENS, HTTP_X_AUTH_TOKEN=member.token, HTTP_X_SUBJECT_TOKEN=owner.token
    )

    assert response.status_code == 403
    assert owner.client().get("/v2/images").status_code == 200


def test_login_token_expires_after_token_expiration(owner, passwords, clock, settings):
    settings.TOKEN_EXPIRATION = 60
    raw_token = log_in(by_name(owner, passwords["owner"]))["X-Subject-Token"]
    client = APIClient(HTTP_X_AUTH_TOKEN=raw_token)
    assert client.get("/v2/images").status_code == 200

    clock.advance(59)
    still = client.get("/v2/images").status_code
    clock.advance(1)

    assert still == 200
    assert client.get("/v2/images").status_code == 401
    validated = APIClient().get(
        TOKENS, HTTP_X_AUTH_TOKEN=owner.token, HTTP_X_SUBJECT_TOKEN=raw_token
    )
    assert validated.status_code == 404


def test_account_locks_after_failed_logins_and_unlocks_after_the_window(
    owner, passwords, clock, settings
):
    settings.LOCKOUT_FAILURE_ATTEMPTS, settings.LOCKOUT_DURATION = 3, 300
    for _ in range(3):
        assert log_in(by_name(owner, "wrong")).status_code == 401
        clock.advance(10)

    locked = log_in(by_name(owner, passwords["owner"]))
    clock.advance(300 - 30 + 1)  # the third failure has left the window
    unlocked = log_in(by_name(owner, passwords["owner"]))

    assert locked.status_code == 401
    assert locked.json()["error"]["message"] == (
        f"The account is locked for user: {owner.user.keystone_id}."
    )
    assert "X-Subject-Token" not in locked
    assert unlocked.status_code == 201
    assert not LoginFailure.objects.filter(user=owner.user).exists()


def test_successful_login_forgets_the_accounts_failures(owner, passwords, settings):
    settings.LOCKOUT_FAILURE_ATTEMPTS = 3
    log_in(by_name(owner, "wrong"))
    log_in(by_name(owner, "wrong"))

    assert log_in(by_name(owner, passwords["owner"])).status_code == 201
    log_in(by_name(owner, "wrong"))
    log_in(by_name(owner, "wrong"))
    assert log_in(by_name(owner, passwords["owner"])).status_code == 201


def test_address_is_turned_away_after_failures_across_accounts(
    owner, member, outsider, passwords, clock, settings
):
    settings.LOGIN_FAILURES_PER_ADDRESS, settings.LOCKOUT_DURATION = 3, 300
    log_in(by_name(owner, "wrong"))
    log_in(by_name(member, "wrong"))
    clock.advance(100)
    log_in(password_auth({"name": "nobody", "domain": {"id": "default"}}, "guess"))

    refused = log_in(by_name(outsider, passwords["outsider"]))
    elsewhere = log_in(by_name(outsider, passwords["outsider"]), REMOTE_ADDR="192.0.2.7")

    assert refused.status_code == 429
    assert refused["Retry-After"] == "200"
    assert refused.json() == {
        "error": {
            "code": 429,
            "title": "Too Many Requests",
            "message": "Too many failed logins from this address; try again in 200 seconds.",
        }
    }
    assert elsewhere.status_code == 201


def test_limits_at_zero_are_off(owner, passwords, settings):
    settings.LOCKOUT_FAILURE_ATTEMPTS = settings.LOGIN_FAILURES_PER_ADDRESS = 0
    for _ in range(8):
        log_in(by_name(owner, "wrong"))

    assert log_in(by_name(owner, passwords["owner"])).status_code == 201


def test_old_failures_are_pruned_when_a_new_one_is_recorded(owner, clock, settings):
    settings.LOCKOUT_DURATION = 300
    log_in(by_name(owner, "wrong"))
    clock.advance(301)

    log_in(by_name(owner, "wrong"))

    assert list(LoginFailure.objects.values_list("at", flat=True)) == [clock.now]
