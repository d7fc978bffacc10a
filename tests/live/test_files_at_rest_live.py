"""The live server's files at rest and its logs: DATA_DIR and everything the service wrote there
readable by the service user only, and no credential in the server's or the access log after
logins (good and bad passwords), token use and an upload."""

from __future__ import annotations

import stat
from pathlib import Path

import requests


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def log_in(url: str, username: str, password: str) -> requests.Response:
    user = {"name": username, "domain": {"name": "Default"}, "password": password}
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": user}}}}
    return requests.post(f"{url}/identity/v3/auth/tokens", json=body, timeout=30)


def test_data_dir_files_are_private_and_logs_hold_no_credentials(live_service):
    headers = {"X-Auth-Token": live_service.user.token}
    created = requests.post(
        f"{live_service.url}/v2/images",
        json={"name": "at-rest", "disk_format": "raw", "container_format": "bare"},
        headers=headers,
        timeout=30,
    ).json()
    uploaded = requests.put(
        f"{live_service.url}/v2/images/{created['id']}/file",
        data=b"private bytes" * 1000,
        headers={**headers, "Content-Type": "application/octet-stream"},
        timeout=30,
    )
    good = log_in(live_service.url, "user", live_service.user.password)
    bad = log_in(live_service.url, "user", "wrong-password-for-the-log-test")

    assert (uploaded.status_code, good.status_code, bad.status_code) == (204, 201, 401)
    data_dir = live_service.data_dir
    private = {
        data_dir: 0o700,
        data_dir / "secret_key": 0o600,
        data_dir / "clouds.yaml": 0o600,
        live_service.store_dir: 0o700,
        live_service.store_dir / created["id"]: 0o600,
    }
    database = data_dir / "imageservice.sqlite3"
    if "DATABASE_URL" not in live_service.env:
        private[database] = 0o600
    assert {path: mode(path) for path in private} == private
    logs = (data_dir.parent / "server.log").read_text() + live_service.access_log.read_text()
    secrets = [
        (data_dir / "secret_key").read_text().strip(),
        good.headers["X-Subject-Token"],
        "wrong-password-for-the-log-test",
        *(account.token for account in (live_service.operator, live_service.user)),
        *(account.password for account in (live_service.operator, live_service.user)),
    ]
    assert [secret for secret in secrets if secret in logs] == []
