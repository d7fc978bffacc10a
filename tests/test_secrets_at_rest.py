"""Secrets and files at rest: DATA_DIR and what the service writes there readable by the service
user only, a SECRET_KEY generated once per installation, and no secret in the logs
(docs/security.md, "Secrets and files at rest").

Settings are read once per process, so what depends on them runs ``manage.py`` in a fresh one.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from tests.support import JSON

OCTET = "application/octet-stream"
OLD_PUBLISHED_DEFAULT = "imageservice-insecure-development-key-change-me"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {
        key: value
        for key, value in os.environ.items()
        if key not in {"SECRET_KEY", "DATABASE_URL", "GLANCE_API_CONF", "LOG_LEVEL"}
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=180,
    )


def secret_key_of(env: dict[str, str]) -> str:
    result = manage(
        "shell", "-c", "from django.conf import settings; print(settings.SECRET_KEY)", env=env
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


# --- SECRET_KEY ------------------------------------------------------------------------------


def test_secret_key_is_generated_once_per_installation_and_kept_private(tmp_path):
    data_dir = tmp_path / "installation"
    env = {"DATA_DIR": str(data_dir)}

    first = secret_key_of(env)
    second = secret_key_of(env)

    assert first == second
    assert len(first) >= 50 and first != OLD_PUBLISHED_DEFAULT
    assert (data_dir / "secret_key").read_text().strip() == first
    assert mode(data_dir / "secret_key") == 0o600
    assert sorted(path.name for path in data_dir.iterdir() if "secret" in path.name) == [
        "secret_key"
    ]


def test_another_installation_gets_another_secret_key(tmp_path):
    assert secret_key_of({"DATA_DIR": str(tmp_path / "one")}) != secret_key_of(
        {"DATA_DIR": str(tmp_path / "two")}
    )


def test_a_set_secret_key_is_used_as_is_and_nothing_is_generated(tmp_path):
    data_dir = tmp_path / "installation"

    key = secret_key_of({"DATA_DIR": str(data_dir), "SECRET_KEY": "the-same-on-every-node"})

    assert key == "the-same-on-every-node"
    assert not (data_dir / "secret_key").exists()


# --- files at rest -----------------------------------------------------------------------------


def test_data_dir_and_the_sqlite_database_are_private(tmp_path):
    data_dir = tmp_path / "installation"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)  # as an earlier version (or the umask) left it

    result = manage("migrate", "--noinput", "-v", "0", env={"DATA_DIR": str(data_dir)})

    assert result.returncode == 0, result.stderr
    assert mode(data_dir) == 0o700
    database = data_dir / "imageservice.sqlite3"
    companions = [data_dir / f"imageservice.sqlite3{suffix}" for suffix in ("-wal", "-shm")]
    assert database.stat().st_size > 0
    assert {path.name: mode(path) for path in [database, *companions] if path.exists()} == {
        path.name: 0o600 for path in [database, *companions] if path.exists()
    }


def test_uploaded_and_staged_data_are_private(owner, make_image, data_dir):
    uploaded = make_image(disk_format="raw", container_format="bare")
    staged = make_image(disk_format="raw", container_format="bare")
    client = owner.client()

    put = client.put(f"/v2/images/{uploaded.id}/file", data=b"x" * 4096, content_type=OCTET)
    stage = client.put(f"/v2/images/{staged.id}/stage", data=b"y" * 4096, content_type=OCTET)

    assert (put.status_code, stage.status_code) == (204, 204)
    assert (mode(data_dir / "images"), mode(data_dir / "images" / uploaded.id)) == (0o700, 0o600)
    assert (mode(data_dir / "staging"), mode(data_dir / "staging" / staged.id)) == (0o700, 0o600)


def test_imported_data_is_private(owner, make_image, data_dir):
    image = make_image(disk_format="raw", container_format="bare")
    client = owner.client()
    client.put(f"/v2/images/{image.id}/stage", data=b"z" * 4096, content_type=OCTET)

    response = client.post(
        f"/v2/images/{image.id}/import",
        data=json.dumps({"method": {"name": "glance-direct"}}),
        content_type="application/json",
        HTTP_ACCEPT=JSON,
    )

    assert response.status_code == 202
    assert mode(data_dir / "images" / image.id) == 0o600


# --- logs ---------------------------------------------------------------------------------------

SWIFT_KEY = "swift-key-marker-4d1c"
S3_SECRET = "s3-secret-marker-92ab"
AUTHTOKEN_PASSWORD = "authtoken-password-marker-55e0"


@pytest.fixture
def conf_with_secrets(tmp_path, swift_service) -> Path:
    """Two object stores whose keys are wrong (so they fail, with errors) and unmistakable."""
    path = tmp_path / "glance-api.conf"
    path.write_text(
        f"""\
[DEFAULT]
enabled_backends = sw:swift, obj:s3

[sw]
swift_store_auth_address = {swift_service["SWIFT_AUTH_URL"]}
swift_store_auth_version = 1
swift_store_user = {swift_service["SWIFT_USER"]}
swift_store_key = {SWIFT_KEY}
swift_store_container = secrets-at-rest

[obj]
s3_store_host = {swift_service["S3_ENDPOINT"]}
s3_store_access_key = {swift_service["S3_ACCESS_KEY"]}
s3_store_secret_key = {S3_SECRET}
s3_store_bucket = secrets-at-rest

[keystone_authtoken]
password = {AUTHTOKEN_PASSWORD}
"""
    )
    return path


def test_check_stores_at_debug_level_writes_no_store_key(conf_with_secrets, tmp_path):
    env = {
        "GLANCE_API_CONF": str(conf_with_secrets),
        "DATA_DIR": str(tmp_path / "installation"),
        "LOG_LEVEL": "DEBUG",
    }

    result = manage("check_stores", env=env)

    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert "sw (default) [swift]: UNAVAILABLE: sw: cannot authenticate at" in output
    assert "obj [s3]: UNAVAILABLE" in output
    assert SWIFT_KEY not in output and S3_SECRET not in output


def test_log_records_never_carry_secrets(conf_with_secrets, tmp_path):
    code = f"""
import logging
from django.conf import settings
log = logging.getLogger("swiftclient")
log.warning("auth with key %s and secret %s", {SWIFT_KEY!r}, {S3_SECRET!r})
log.warning("keystone password %s", {AUTHTOKEN_PASSWORD!r})
log.warning("signing with %s", settings.SECRET_KEY)
log.warning("fetching https://alice:hunter2-long@images.example/disk.img")
log.warning("REQ: curl -H 'X-Auth-Token: gAAAAABlongtokenvalue' -H 'X-Auth-Key: keyvalue12'")
try:
    raise RuntimeError("cannot reach {SWIFT_KEY}")
except RuntimeError:
    log.exception("store failed")
print("SECRET_KEY=" + settings.SECRET_KEY)
"""
    env = {
        "GLANCE_API_CONF": str(conf_with_secrets),
        "DATA_DIR": str(tmp_path / "installation"),
        "LOG_LEVEL": "DEBUG",
    }

    result = manage("shell", "-c", code, env=env)

    assert result.returncode == 0, result.stderr
    secret_key = result.stdout.strip().splitlines()[-1].removeprefix("SECRET_KEY=")
    log = result.stderr
    assert log.splitlines()[:5] == [
        "auth with key *** and secret ***",
        "keystone password ***",
        "signing with ***",
        "fetching https://***@images.example/disk.img",
        "REQ: curl -H 'X-Auth-Token: ***' -H 'X-Auth-Key: ***'",
    ]
    assert "RuntimeError: cannot reach ***" in log
    for secret in (SWIFT_KEY, S3_SECRET, AUTHTOKEN_PASSWORD, secret_key, "hunter2", "gAAAA"):
        assert secret not in log
