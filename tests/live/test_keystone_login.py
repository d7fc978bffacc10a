"""Logging in through the embedded Keystone with unchanged clients and a password clouds.yaml.

The clouds.yaml is the one ``seed_demo`` wrote for the live server (as ``make run`` does), so
nothing but this service runs: no Keystone, no admin_token, no endpoint override.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import glanceclient
import openstack
import pytest
import requests
from keystoneauth1 import exceptions as ks_exceptions
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from tests.live.helpers import make_payload

# The console script installed beside the interpreter running the tests (.venv/bin/openstack).
OPENSTACK = Path(sys.executable).parent / "openstack"
UNAUTHORIZED = "The request you have made requires authentication."

# As in test_openstacksdk: openstacksdk 4.22 warns about its own future removals.
pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning:openstack.*")


def run_openstack(live_service, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**live_service.env, "OS_CLIENT_CONFIG_FILE": str(live_service.clouds_file)}
    result = subprocess.run(
        [str(OPENSTACK), *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def password_auth(live_service, username: str, password: str, project: str) -> v3.Password:
    return v3.Password(
        auth_url=f"{live_service.url}/identity/v3",
        username=username,
        password=password,
        user_domain_name="Default",
        project_name=project,
        project_domain_name="Default",
    )


def log_in(url: str, username: str, password: str) -> requests.Response:
    user = {"name": username, "domain": {"id": "default"}, "password": password}
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": user}}}}
    return requests.post(f"{url}/identity/v3/auth/tokens", json=body, timeout=30)


@pytest.fixture
def lockable_account(live_service, unique) -> tuple[str, str]:
    """A user of project demo of its own, so locking it out leaves the demo accounts alone."""
    username, password = f"lockable-{unique}", f"pw-{unique}"
    live_service.manage("create_user", username, "--project", "demo")
    live_service.manage("set_password", username, "--password", password)
    return username, password


def test_openstack_cli_creates_and_lists_images_with_a_password_cloud(
    live_service, tmp_path, unique
):
    payload = make_payload(tmp_path, 64 * 1024)
    mark = live_service.access_log_mark()

    created = json.loads(
        run_openstack(
            live_service,
            "--os-cloud", "imageservice-demo", "image", "create", "--file", str(payload.path),
            "--disk-format", "raw", f"osc-login-{unique}", "-f", "json",
        ).stdout
    )  # fmt: skip
    listed = json.loads(
        run_openstack(
            live_service, "--os-cloud", "imageservice-demo", "image", "list", "-f", "json"
        ).stdout
    )

    assert created["status"] == "active"
    assert created["owner"] == live_service.user.project_id
    assert created["checksum"] == payload.md5
    assert {"ID": created["id"], "Name": f"osc-login-{unique}", "Status": "active"} in listed
    logins = live_service.requests_since(mark, path_prefix="/identity/v3/auth/tokens", at_least=2)
    assert logins == [("POST", "/identity/v3/auth/tokens", 201)] * 2
    stored = live_service.store_dir / created["id"]
    assert stored.read_bytes() == payload.data


def test_openstack_cli_wrong_password_is_401(live_service, lockable_account):
    username, _ = lockable_account

    result = run_openstack(
        live_service,
        "--os-cloud", "imageservice-demo", "--os-username", username, "--os-password", "wrong",
        "image", "list",
        check=False,
    )  # fmt: skip

    assert result.returncode == 1
    assert f"{UNAUTHORIZED} (HTTP 401)" in result.stderr


def test_openstack_cli_token_issue_and_revoke(live_service):
    issued = json.loads(
        run_openstack(
            live_service, "--os-cloud", "imageservice-other", "token", "issue", "-f", "json"
        ).stdout
    )
    headers = {"X-Auth-Token": issued["id"]}
    before = requests.get(f"{live_service.url}/v2/images", headers=headers, timeout=30)

    run_openstack(live_service, "--os-cloud", "imageservice-other", "token", "revoke", issued["id"])

    assert issued["project_id"] == live_service.other.project_id
    assert before.status_code == 200
    # Another worker may still trust its cached validation for TOKEN_CACHE_SECONDS (5 s).
    deadline = time.monotonic() + 10
    while requests.get(f"{live_service.url}/v2/images", headers=headers, timeout=30).ok:
        assert time.monotonic() < deadline, "the revoked token was still accepted after 10 s"
        time.sleep(0.5)


def test_openstacksdk_connects_with_the_password_cloud(live_service, monkeypatch, unique):
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(live_service.clouds_file))

    with openstack.connect(cloud="imageservice-demo") as conn:
        image = conn.image.create_image(
            name=f"sdk-login-{unique}",
            data=b"x" * 1024,
            disk_format="raw",
            container_format="bare",
        )
        stored = conn.image.get_image(image.id)
        names = [found.name for found in conn.image.images(name=f"sdk-login-{unique}")]
        endpoint = conn.session.get_endpoint(service_type="image", interface="public")
        project_id = conn.current_project_id

    assert stored.status == "active"
    assert stored.owner == live_service.user.project_id == project_id
    assert names == [f"sdk-login-{unique}"]
    assert endpoint.rstrip("/") in {live_service.url, f"{live_service.url}/v2"}


def test_keystoneauth_session_drives_glanceclient(live_service, unique):
    user = live_service.user
    auth = password_auth(live_service, user.username, user.password, "demo")
    session = ks_session.Session(auth=auth)
    glance = glanceclient.Client("2", session=session)

    created = glance.images.create(name=f"ksa-login-{unique}", tags=[unique])
    listed = [image["id"] for image in glance.images.list(filters={"tag": [unique]})]

    assert created["owner"] == user.project_id
    assert listed == [created["id"]]
    assert session.get_project_id() == user.project_id
    assert session.get_endpoint(service_type="identity", interface="internal") == (
        f"{live_service.url}/identity"
    )


def test_login_token_stops_working_when_it_expires(extra_live_service, live_service):
    # Long enough that the first request comes before expiry on a loaded machine.
    short_lived = extra_live_service(TOKEN_EXPIRATION="8")
    user = live_service.user

    logged_in_at = time.monotonic()
    response = log_in(short_lived.url, user.username, user.password)
    token = response.headers["X-Subject-Token"]
    headers = {"X-Auth-Token": token}
    fresh = requests.get(f"{short_lived.url}/v2/images", headers=headers, timeout=30)
    time.sleep(max(0.0, logged_in_at + 8.5 - time.monotonic()))
    expired = requests.get(f"{short_lived.url}/v2/images", headers=headers, timeout=30)

    assert response.status_code == 201
    assert fresh.status_code == 200
    assert expired.status_code == 401


def test_failed_logins_lock_the_account_until_its_password_is_reset(live_service, lockable_account):
    username, password = lockable_account
    for _ in range(5):  # LOCKOUT_FAILURE_ATTEMPTS' default
        assert log_in(live_service.url, username, "wrong").status_code == 401

    session = ks_session.Session(auth=password_auth(live_service, username, password, "demo"))
    with pytest.raises(ks_exceptions.Unauthorized, match="The account is locked for user"):
        session.get_token()
    live_service.manage("set_password", username, "--password", password)
    unlocked = ks_session.Session(auth=password_auth(live_service, username, password, "demo"))

    assert unlocked.get_token()
