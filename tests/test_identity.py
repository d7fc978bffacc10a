"""Tokens, users and projects: authentication and the identity management commands."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
import yaml
from django.conf import global_settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from rest_framework.test import APIClient

from imageservice.identity.models import ApiToken, LoginFailure, Project, User
from imageservice.identity.services import ensure_project, ensure_user, issue_token
from imageservice.identity.tokens import hash_token
from imageservice.policy.engine import reset_policy


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_token_is_stored_only_as_its_digest(owner):
    stored = ApiToken.objects.get(user=owner.user)

    assert stored.digest == hash_token(owner.token)
    assert stored.prefix == owner.token[:8]


def test_expired_token_is_401(owner):
    ApiToken.objects.filter(user=owner.user).update(expires_at=timezone.now() - timedelta(1))

    response = owner.client().get("/v2/images", HTTP_ACCEPT="application/json")

    assert response.status_code == 401


def test_revoked_token_is_401_at_once_and_others_keep_working(owner):
    _, second = issue_token(owner.user)
    assert owner.client().get("/v2/images").status_code == 200  # now validated and cached
    ApiToken.objects.get(digest=hash_token(owner.token)).revoke()

    revoked = owner.client().get("/v2/images")
    other = APIClient(HTTP_X_AUTH_TOKEN=second).get("/v2/images")

    assert revoked.status_code == 401
    assert other.status_code == 200


def test_issued_tokens_never_start_with_a_dash(owner, monkeypatch):
    drawn = iter(["-looks-like-an-option", "_fine-token"])
    monkeypatch.setattr("secrets.token_urlsafe", lambda nbytes: next(drawn))

    _, raw = issue_token(owner.user)

    assert raw == "_fine-token"


def test_percent_quoted_token_is_accepted(owner, db):
    user, _ = ensure_user("quoted", owner.user.project, ["member", "reader"])
    issue_token(user, raw_token="a+b/c=")

    response = APIClient(HTTP_X_AUTH_TOKEN="a%2Bb%2Fc%3D").get("/v2/images")

    assert response.status_code == 200


def test_create_project_user_and_token_commands_print_what_they_did(db):
    project_out = run("create_project", "research")
    user_out = run("create_user", "ada", "--project", "research", "--roles", "member,Reader")
    token_out = run("issue_token", "ada", "--expires-in", "2")

    project = Project.objects.get(name="research")
    user = User.objects.get(username="ada")
    raw = token_out.strip().splitlines()[-1]
    assert f"Created project research (id {project.id})" in project_out
    assert "Created user ada" in user_out and "roles member, reader" in user_out
    assert user.role_names() == {"member", "reader"}
    assert "expires" in token_out
    response = APIClient(HTTP_X_AUTH_TOKEN=raw).get("/v2/images")
    assert response.status_code == 200


def test_create_user_in_unknown_project_fails_clearly(db):
    with pytest.raises(CommandError, match="No project named 'nowhere'"):
        run("create_user", "bob", "--project", "nowhere")


def test_revoke_token_command_revokes_all_of_a_user(owner):
    issue_token(owner.user)

    out = run("revoke_token", "--user", "owner")

    assert "2 token(s) revoked." in out
    assert owner.client().get("/v2/images").status_code == 401


def test_seed_demo_is_idempotent_and_honours_fixed_tokens(db, monkeypatch):
    monkeypatch.setenv("DEMO_USER_TOKEN", "fixed-user-token")
    first = run("seed_demo")
    second = run("seed_demo")

    assert "DEMO_USER_TOKEN as set in the environment" in first and "[exists]" in second
    assert "fixed-user-token" not in first + second
    assert User.objects.filter(username__in=["operator", "user", "other"]).count() == 3
    assert set(Project.objects.values_list("name", flat=True)) == {"admin", "demo", "other"}
    operator = User.objects.get(username="operator")
    assert operator.role_names() == {"admin", "member", "reader"}
    assert User.objects.get(username="other").project.name == "other"
    assert ApiToken.objects.filter(digest=hash_token("fixed-user-token")).count() == 1
    response = APIClient(HTTP_X_AUTH_TOKEN="fixed-user-token").get("/v2/images")
    assert response.status_code == 200


def test_seed_demo_sets_a_password_once_and_prints_it_once(db, settings):
    first = run("seed_demo")
    operator = User.objects.get(username="operator")
    clouds = yaml.safe_load((settings.DATA_DIR / "clouds.yaml").read_text())["clouds"]
    password = clouds["imageservice-admin"]["auth"]["password"]
    token = ApiToken.objects.get(user=operator, description="seed_demo")

    second = run("seed_demo")

    assert f"DEMO_OPERATOR_PASSWORD={password}  (new: shown this once)" in first
    assert password not in second
    assert "DEMO_OPERATOR_PASSWORD unchanged (in clouds.yaml)" in second
    assert User.objects.get(username="operator").check_password(password)
    again = yaml.safe_load((settings.DATA_DIR / "clouds.yaml").read_text())["clouds"]
    assert again["imageservice-admin"]["auth"]["password"] == password
    # One token per account, issued and printed at the first run only.
    assert list(ApiToken.objects.filter(user=operator)) == [token]
    assert "DEMO_OPERATOR_TOKEN=" in first and "DEMO_OPERATOR_TOKEN=" not in second


def test_seed_demo_fixed_operator_password_replaces_the_generated_one(db, monkeypatch):
    run("seed_demo")
    monkeypatch.setenv("DEMO_OPERATOR_PASSWORD", "chosen-by-the-operator")

    out = run("seed_demo")

    assert "DEMO_OPERATOR_PASSWORD as set in the environment" in out
    assert User.objects.get(username="operator").check_password("chosen-by-the-operator")


def test_seed_demo_keeps_a_password_the_operator_changed(db, settings):
    run("seed_demo")
    run("set_password", "operator", "--password", "changed-in-between")

    out = run("seed_demo")

    assert "DEMO_OPERATOR_PASSWORD unchanged (set with `manage.py set_password`" in out
    assert User.objects.get(username="operator").check_password("changed-in-between")
    clouds = yaml.safe_load((settings.DATA_DIR / "clouds.yaml").read_text())["clouds"]
    assert "password" not in clouds["imageservice-admin"]["auth"]


def test_service_token_adds_service_credentials_for_policy(owner, settings, tmp_path):
    service_project, _ = ensure_project("service")
    glance_service, _ = ensure_user("nova", service_project, ["service"], is_service=True)
    _, service_token = issue_token(glance_service)
    policy = tmp_path / "policy.yaml"
    policy.write_text('add_image: "role:admin or service_roles:service"\n')
    settings.POLICY_FILE = str(policy)
    reset_policy()
    body = json.dumps({"name": "x"})

    alone = owner.client().post("/v2/images", data=body, content_type="application/json")
    with_service = owner.client().post(
        "/v2/images",
        data=body,
        content_type="application/json",
        HTTP_X_SERVICE_TOKEN=service_token,
    )

    assert alone.status_code == 403
    assert with_service.status_code == 201
    settings.POLICY_FILE = ""
    reset_policy()


def test_service_token_of_a_normal_user_is_refused(owner, member):
    response = owner.client().get("/v2/images", HTTP_X_SERVICE_TOKEN=member.token)

    assert response.status_code == 401


def test_validated_token_is_reused_without_identity_queries(owner, django_assert_num_queries):
    owner.client().get("/v2/schemas/member")

    with django_assert_num_queries(0):
        response = owner.client().get("/v2/schemas/member")

    assert response.status_code == 200


def test_cached_token_still_expires_on_time(owner, monkeypatch):
    token = ApiToken.objects.get(digest=hash_token(owner.token))
    token.expires_at = timezone.now() + timedelta(seconds=60)
    token.save()
    assert owner.client().get("/v2/images").status_code == 200
    later = token.expires_at + timedelta(seconds=1)
    monkeypatch.setattr(timezone, "now", lambda: later)

    assert owner.client().get("/v2/images").status_code == 401


def test_seed_demo_sets_passwords_and_writes_a_password_clouds_yaml(db, monkeypatch, settings):
    monkeypatch.setenv("DEMO_USER_PASSWORD", "fixed-user-password")

    out = run("seed_demo", "--endpoint", "http://images.example:8000")

    path = settings.DATA_DIR / "clouds.yaml"
    clouds = yaml.safe_load(path.read_text())["clouds"]
    assert path.stat().st_mode & 0o777 == 0o600
    assert "DEMO_USER_PASSWORD as set in the environment" in out
    assert "fixed-user-password" not in out
    assert clouds["imageservice-demo"] == {
        "auth_type": "password",
        "auth": {
            "auth_url": "http://images.example:8000/identity/v3",
            "username": "user",
            "password": "fixed-user-password",
            "user_domain_name": "Default",
            "project_name": "demo",
            "project_domain_name": "Default",
        },
        "region_name": "RegionOne",
        "interface": "public",
        "identity_api_version": 3,
    }
    assert set(clouds) == {"imageservice-demo", "imageservice-other", "imageservice-admin"}
    other_password = clouds["imageservice-other"]["auth"]["password"]
    assert f"DEMO_OTHER_PASSWORD={other_password}  (new: shown this once)" in out
    assert User.objects.get(username="user").check_password("fixed-user-password")
    assert User.objects.get(username="other").check_password(other_password)
    operator = User.objects.get(username="operator")
    assert operator.check_password(clouds["imageservice-admin"]["auth"]["password"])


def test_set_password_stores_a_hash_and_unlocks_the_account(owner, settings):
    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS  # the service's, not the suite's
    LoginFailure.objects.create(user=owner.user, address="127.0.0.1")

    out = run("set_password", "owner", "--password", "n3w-secret")

    owner.user.refresh_from_db()
    assert out == "Set the password of owner.\nUnlocked: 1 failed login(s) forgotten.\n"
    assert owner.user.password.startswith("pbkdf2_sha256$")
    assert owner.user.check_password("n3w-secret")
    assert not LoginFailure.objects.filter(user=owner.user).exists()


def test_set_password_random_prints_the_new_password_once(owner):
    out = run("set_password", "owner", "--random")

    password = out.strip().removeprefix("Set the password of owner: ")
    owner.user.refresh_from_db()
    assert len(password) >= 16
    assert owner.user.check_password(password)


def test_set_password_without_a_password_or_terminal_changes_nothing(owner, monkeypatch):
    monkeypatch.setattr("sys.stdin", StringIO())

    with pytest.raises(CommandError, match="Give --password or --random"):
        run("set_password", "owner")
    with pytest.raises(CommandError, match="No user named 'nobody'"):
        run("set_password", "nobody", "--random")
    owner.user.refresh_from_db()
    assert not owner.user.has_usable_password()
