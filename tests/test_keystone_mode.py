"""Keystone mode without a Keystone: what the API makes of keystonemiddleware's headers, which
paths skip the middleware, the settings and checks. tests/keystone runs it against a real one."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from images.models import Image
from imageservice import checks
from imageservice.config_syntax import read_ini
from imageservice.glance_conf import GlanceConf, auth_strategy, keystone_authtoken
from imageservice.identity import keystone_names
from imageservice.identity.credentials import VALIDATED_ENVIRON_KEY, Credentials
from imageservice.identity.keystone_console import KeystoneBackend
from imageservice.identity.keystone_wsgi import KeystoneAuthWrapper, needs_token

WWW_AUTHENTICATE = 'Keystone uri="http://keystone.test:5000/v3"'
MIDDLEWARE_OPTIONS = {
    "www_authenticate_uri": "http://keystone.test:5000/v3",
    "auth_url": "http://127.0.0.1:9/v3",
    "auth_type": "password",
    "username": "glance",
    "password": "secret",
    "project_name": "service",
}


def conf(text: str) -> GlanceConf:
    return GlanceConf("glance-api.conf", read_ini(text, strict=False))


# --- credentials from the middleware's headers ------------------------------------------------


def test_credentials_from_headers_lower_case_roles_and_read_the_admin_project_flag():
    meta = {
        "HTTP_X_USER_ID": "u1",
        "HTTP_X_PROJECT_ID": "p1",
        "HTTP_X_ROLES": "Member,reader",
        "HTTP_X_USER_DOMAIN_ID": "default",
        "HTTP_X_PROJECT_DOMAIN_ID": "default",
        "HTTP_X_IS_ADMIN_PROJECT": "False",
    }

    creds = Credentials.from_keystone_headers(meta)

    assert creds == Credentials(
        user_id="u1",
        project_id="p1",
        roles=frozenset({"member", "reader"}),
        user_domain_id="default",
        project_domain_id="default",
        is_admin_project=False,
    )


def test_service_headers_count_only_when_the_service_token_was_confirmed():
    service = {
        "HTTP_X_SERVICE_USER_ID": "glance-id",
        "HTTP_X_SERVICE_PROJECT_ID": "service-id",
        "HTTP_X_SERVICE_ROLES": "service,Admin",
    }

    confirmed = Credentials.from_keystone_headers(
        {**service, "HTTP_X_SERVICE_IDENTITY_STATUS": "Confirmed"}
    )
    unconfirmed = Credentials.from_keystone_headers(service)

    assert confirmed.service_user_id == "glance-id"
    assert confirmed.service_project_id == "service-id"
    assert confirmed.service_roles == frozenset({"service", "admin"})
    assert unconfirmed.service_user_id is None
    assert unconfirmed.service_roles == frozenset()


def test_image_created_in_keystone_mode_belongs_to_the_token_project(keystone_mode, owner):
    response = owner.keystone_client().post("/v2/images", {"name": "k"}, format="json")

    assert response.status_code == 201
    assert Image.objects.get(pk=response.json()["id"]).owner == owner.project_id


def test_identity_headers_that_did_not_come_through_the_middleware_are_refused(
    keystone_mode, admin
):
    spoofed = APIClient(
        HTTP_X_IDENTITY_STATUS="Confirmed",
        HTTP_X_USER_ID=admin.user.keystone_id,
        HTTP_X_PROJECT_ID=admin.project_id,
        HTTP_X_ROLES="admin",
    )

    response = spoofed.get("/v2/images")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == WWW_AUTHENTICATE


def test_identity_status_invalid_is_refused_with_keystone_header(keystone_mode):
    # What the middleware passes on with delay_auth_decision = true and a bad token.
    client = APIClient(**{VALIDATED_ENVIRON_KEY: True, "HTTP_X_IDENTITY_STATUS": "Invalid"})

    response = client.get("/v2/images")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == WWW_AUTHENTICATE


def test_local_tokens_are_not_accepted_in_keystone_mode(keystone_mode, owner):
    assert owner.client().get("/v2/images").status_code == 401


# --- the WSGI wrapper -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/v2/images", True),
        ("/v2", True),
        ("/v2.1/images", True),
        ("/v2.99/images", False),  # not an advertised version: the 300 document
        ("/versions", False),
        ("/", False),
        ("/healthcheck", False),
        ("/admin/login/", False),
        ("/static/admin/css/base.css", False),
        ("/v3/images", False),
    ],
)
def test_only_the_v2_api_needs_a_token(path, expected):
    assert needs_token(path) is expected


def wsgi_call(app, path: str, headers: dict[str, str] | None = None):
    seen, answer = [], {}

    def django(environ, start_response):
        seen.append(environ)
        start_response("200 OK", [])
        return [b"django"]

    def start_response(status, response_headers, exc_info=None):
        answer.update(status=status, headers=dict(response_headers))

    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "SERVER_NAME": "test",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        **(headers or {}),
    }
    body = b"".join(app(django)(environ, start_response))
    return seen, answer, body


def test_wrapper_lets_token_free_paths_through_without_the_mark():
    seen, answer, body = wsgi_call(
        lambda django: KeystoneAuthWrapper(django, MIDDLEWARE_OPTIONS), "/versions"
    )

    assert answer["status"] == "200 OK"
    assert body == b"django"
    assert VALIDATED_ENVIRON_KEY not in seen[0]


def test_wrapper_refuses_an_api_call_without_token_before_django():
    spoofed = {"HTTP_X_IDENTITY_STATUS": "Confirmed", "HTTP_X_ROLES": "admin"}

    seen, answer, _ = wsgi_call(
        lambda django: KeystoneAuthWrapper(django, MIDDLEWARE_OPTIONS), "/v2/images", spoofed
    )

    assert seen == []
    assert answer["status"].startswith("401")
    assert answer["headers"]["WWW-Authenticate"] == WWW_AUTHENTICATE


# --- settings and checks ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flavor", "strategy"),
    [("keystone", "keystone"), ("keystone+cachemanagement", "keystone"), ("", "local")],
)
def test_paste_deploy_flavor_chooses_the_strategy(flavor, strategy):
    assert auth_strategy(conf(f"[paste_deploy]\nflavor = {flavor}\n")) == strategy


def test_keystone_authtoken_comes_from_the_file_and_environment_overrides_it():
    glance = conf("[keystone_authtoken]\nauth_url = http://file/v3\nusername = glance\n")

    options = keystone_authtoken(glance, {"KEYSTONE_AUTHTOKEN_AUTH_URL": " http://env/v3 "})

    assert options == {"auth_url": "http://env/v3", "username": "glance"}


def test_check_reports_missing_and_unknown_authtoken_options(settings):
    settings.AUTH_STRATEGY = "keystone"
    settings.KEYSTONE_AUTHTOKEN = {"auth_type": "password", "token_cache_time": "soon"}

    messages = [(m.id, m.msg) for m in checks._check_keystone()]

    assert ("imageservice.E041", "[keystone_authtoken]: www_authenticate_uri is not set") in (
        messages
    )
    assert ("imageservice.E041", "[keystone_authtoken]: auth_url is not set") in messages
    assert any("soon" in text for _, text in messages)


def test_check_refuses_an_unknown_strategy(settings):
    settings.AUTH_STRATEGY = "ldap"

    assert [m.id for m in checks._check_keystone()] == ["imageservice.E040"]


def test_nothing_asks_keystone_in_local_mode(db):
    assert keystone_names.project_name("p1") is None
    assert keystone_names.project_choices() == []
    assert KeystoneBackend().authenticate(None, username="admin", password="x") is None


# --- explaining for Keystone users ------------------------------------------------------------


def test_explain_command_takes_keystone_credentials(db, make_image):
    image = make_image(name="private", visibility="private", status="active", owner="p-alpha")
    out = StringIO()

    call_command(
        "explain_policy",
        "--user-id", "u-alice", "--project-id", "p-alpha", "--roles", "Member,reader",
        "--action", "delete_image", "--image", image.id,
        stdout=out,
    )  # fmt: skip

    lines = out.getvalue().splitlines()
    assert lines[0] == (
        f"ALLOWED: user u-alice (project p-alpha, roles member,reader) "
        f"for delete_image on image {image.id}"
    )
    assert "  project_id:%(project_id)s" in lines


def test_explain_page_takes_keystone_credentials(client, admin):
    client.force_login(admin.user)
    ask = {"user_id": "u-rita", "project_id": "p-alpha", "roles": "reader", "action": "add_image"}

    page = client.get("/admin/policy/", ask).content.decode()

    assert "DENIED" in page
    assert "user u-rita (project p-alpha, roles reader)" in page


def test_explain_page_wants_a_user_or_keystone_credentials(client, admin):
    client.force_login(admin.user)

    page = client.get("/admin/policy/", {"action": "add_image"}).content.decode()

    assert "Give a local user, or Keystone credentials" in page


def test_embedded_login_calls_do_not_exist_in_keystone_mode(keystone_mode, client):
    login = {"auth": {"identity": {"methods": ["password"]}}}

    discovery = client.get("/identity/v3")
    tokens = client.post("/identity/v3/auth/tokens", login, content_type="application/json")

    assert (discovery.status_code, tokens.status_code) == (404, 404)
    assert tokens.json()["error"]["code"] == 404
