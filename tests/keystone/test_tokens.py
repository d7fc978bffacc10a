"""Tokens through keystonemiddleware against the real Keystone: who gets in, and with what."""

from __future__ import annotations

import pytest
import requests


def www_authenticate(keystone) -> str:
    return f'Keystone uri="{keystone.auth_url}"'


def test_version_documents_need_no_token(keystone_service):
    assert requests.get(f"{keystone_service.url}/versions", timeout=10).status_code == 200
    assert requests.get(f"{keystone_service.url}/", timeout=10).status_code == 300
    health = requests.get(f"{keystone_service.url}/healthcheck", timeout=10)
    assert (health.status_code, health.text) == (200, "OK")


@pytest.mark.parametrize("token", [None, "not-a-token", "gAAAAABbogus"])
def test_missing_or_bad_token_is_401_with_keystone_uri(keystone, keystone_service, token):
    headers = {"X-Auth-Token": token} if token else {}

    response = requests.get(f"{keystone_service.url}/v2/images", headers=headers, timeout=30)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == www_authenticate(keystone)


def test_token_revoked_before_first_use_is_401(keystone, keystone_service):
    token = keystone.token("alice")
    keystone.revoke(token)

    response = requests.get(
        f"{keystone_service.url}/v2/images", headers={"X-Auth-Token": token}, timeout=30
    )

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == www_authenticate(keystone)


def test_identity_headers_sent_by_the_client_are_ignored(keystone, keystone_service, unique):
    spoofed = {
        "X-Auth-Token": keystone.token("alice"),
        "X-Identity-Status": "Confirmed",
        "X-User-Id": keystone.user_id("admin"),
        "X-Project-Id": keystone.project_id("beta"),
        "X-Roles": "admin,member,reader",
        "X-Is-Admin-Project": "True",
        "X-Service-Roles": "service",
        "X-Service-Identity-Status": "Confirmed",
    }
    url = keystone_service.url

    tasks = requests.get(f"{url}/v2/tasks", headers=spoofed, timeout=30)
    created = requests.post(
        f"{url}/v2/images", json={"name": f"spoofed-{unique}"}, headers=spoofed, timeout=30
    )

    assert tasks.status_code == 403  # tasks are for admins; alice is a member of alpha
    assert created.status_code == 201
    assert created.json()["owner"] == keystone.project_id("alpha")
    requests.delete(f"{url}/v2/images/{created.json()['id']}", headers=spoofed, timeout=30)


def test_identity_headers_without_a_token_are_401(keystone, keystone_service):
    spoofed = {"X-Identity-Status": "Confirmed", "X-Roles": "admin", "X-User-Id": "x"}

    response = requests.get(f"{keystone_service.url}/v2/images", headers=spoofed, timeout=30)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == www_authenticate(keystone)


def test_admin_token_sees_the_admin_only_task_list(keystone, keystone_service):
    token = keystone.token("admin")

    response = requests.get(
        f"{keystone_service.url}/v2/tasks", headers={"X-Auth-Token": token}, timeout=30
    )

    assert response.status_code == 200
    assert isinstance(response.json()["tasks"], list)


def test_reader_may_list_but_not_create(keystone, keystone_service, unique):
    headers = {"X-Auth-Token": keystone.token("rita")}
    url = keystone_service.url

    listed = requests.get(f"{url}/v2/images", headers=headers, timeout=30)
    created = requests.post(f"{url}/v2/images", json={"name": unique}, headers=headers, timeout=30)

    assert listed.status_code == 200
    assert created.status_code == 403
