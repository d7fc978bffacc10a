"""The operator console in Keystone mode: Keystone users with the admin role log in, others do
not; local accounts still do; owners show as Keystone project names."""

from __future__ import annotations

import re

import pytest
import requests

LOCAL_PASSWORD = "local-console-pw"
INVALID_LOGIN = "Please enter the correct"


def log_in(service, username: str, password: str, domain: str = "Default") -> requests.Session:
    browser = requests.Session()
    page = browser.get(f"{service.url}/admin/login/", timeout=30)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)[1]
    browser.login_response = browser.post(
        f"{service.url}/admin/login/?next=/admin/",
        data={
            "csrfmiddlewaretoken": csrf,
            "username": username,
            "password": password,
            "domain": domain,
            "next": "/admin/",
        },
        allow_redirects=False,
        timeout=30,
    )
    return browser


def test_login_page_asks_for_the_keystone_domain(keystone_service):
    page = requests.get(f"{keystone_service.url}/admin/login/", timeout=30).text

    assert 'name="domain"' in page
    assert 'value="Default"' in page


def test_keystone_admin_logs_in(keystone, keystone_service):
    browser = log_in(keystone_service, "admin", keystone.password("admin"))

    index = browser.get(f"{keystone_service.url}/admin/", timeout=30)

    assert browser.login_response.status_code == 302
    assert browser.login_response.headers["Location"] == "/admin/"
    assert index.status_code == 200
    assert "admin@Default" in index.text


@pytest.mark.parametrize(
    ("user", "password", "domain"),
    [
        ("alice", "alice-secret", "Default"),  # right password, but a member only
        ("admin", "wrong-password", "Default"),
        ("admin", "admin-secret", "NoSuchDomain"),
    ],
)
def test_keystone_login_is_refused(keystone_service, user, password, domain):
    browser = log_in(keystone_service, user, password, domain)

    assert browser.login_response.status_code == 200
    assert INVALID_LOGIN in browser.login_response.text
    assert browser.get(f"{keystone_service.url}/admin/", timeout=30).url.endswith(
        "/admin/login/?next=/admin/"
    )


def test_local_console_account_still_logs_in(keystone_service):
    keystone_service.manage(
        "shell",
        "-c",
        "from imageservice.identity.models import User; "
        "u = User.objects.get(username='operator'); "
        f"u.set_password({LOCAL_PASSWORD!r}); u.save()",
    )

    browser = log_in(keystone_service, "operator", LOCAL_PASSWORD)

    assert browser.login_response.status_code == 302


def test_console_shows_keystone_project_names(keystone, keystone_service, unique):
    token = keystone.token("alice")
    created = requests.post(
        f"{keystone_service.url}/v2/images",
        json={"name": f"named-{unique}"},
        headers={"X-Auth-Token": token},
        timeout=30,
    ).json()
    browser = log_in(keystone_service, "admin", keystone.password("admin"))

    try:
        listing = browser.get(
            f"{keystone_service.url}/admin/images/image/", params={"q": created["id"]}, timeout=30
        ).text
    finally:
        requests.delete(
            f"{keystone_service.url}/v2/images/{created['id']}",
            headers={"X-Auth-Token": token},
            timeout=30,
        )

    row = listing[listing.index(f"named-{unique}") :]
    assert re.search(r'<td class="field-owner_display">alpha</td>', row)
    # The owner filter offers Keystone's projects by name.
    assert f"owner={keystone.project_id('beta')}" in listing
