"""python-openstackclient with a password clouds.yaml: Keystone login, the catalog's image
endpoint, then the image service in Keystone mode; the whole life of an image across two
projects."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

OPENSTACK = Path(sys.executable).parent / "openstack"
IMPORT_TIMEOUT = 60


@pytest.fixture(scope="module")
def cli(keystone, keystone_service, tmp_path_factory):
    clouds = keystone.clouds_yaml(
        tmp_path_factory.mktemp("osc") / "clouds.yaml", ["alice", "bob", "admin"]
    )
    env = {**keystone_service.env, "OS_CLIENT_CONFIG_FILE": str(clouds)}

    def run(cloud: str, *args: str) -> object:
        result = subprocess.run(
            [str(OPENSTACK), "--os-cloud", cloud, *args],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, f"openstack {' '.join(args)}:\n{result.stderr}"
        return json.loads(result.stdout) if "-f" in args and result.stdout.strip() else None

    return run


def wait_active(cli, image_id: str) -> dict:
    deadline = time.monotonic() + IMPORT_TIMEOUT
    while True:
        shown = cli("alice", "image", "show", image_id, "-f", "json")
        if shown["status"] == "active" or time.monotonic() > deadline:
            return shown
        time.sleep(0.5)


def test_image_life_through_the_catalog(cli, keystone, live_worker, tmp_path, unique):
    data = os.urandom(64 * 1024)
    payload = tmp_path / "payload.raw"
    payload.write_bytes(data)
    common = ("--disk-format", "raw", "--container-format", "bare", "--file", str(payload))

    uploaded = cli("alice", "image", "create", *common, f"upload-{unique}", "-f", "json")
    imported = cli(
        "alice", "image", "create", "--import", *common, f"import-{unique}", "-f", "json"
    )
    listed = {image["ID"] for image in cli("alice", "image", "list", "-f", "json")}
    shown = cli("alice", "image", "show", uploaded["id"], "-f", "json")
    done = wait_active(cli, imported["id"])

    assert uploaded["status"] == "active"
    assert shown["checksum"] == hashlib.md5(data, usedforsecurity=False).hexdigest()
    assert shown["owner"] == keystone.project_id("alpha")
    assert {uploaded["id"], imported["id"]} <= listed
    assert done["status"] == "active"
    assert done["size"] == len(data)

    # Shared with project beta: bob accepts, and then sees it in his list.
    beta = keystone.project_id("beta")
    cli("alice", "image", "add", "project", uploaded["id"], beta)
    before = {image["ID"] for image in cli("bob", "image", "list", "-f", "json")}
    cli("bob", "image", "set", "--accept", uploaded["id"])
    after = {image["ID"] for image in cli("bob", "image", "list", "-f", "json")}
    members = cli("alice", "image", "member", "list", uploaded["id"], "-f", "json")

    assert uploaded["id"] not in before
    assert uploaded["id"] in after
    assert [(m["Member ID"], m["Status"]) for m in members] == [(beta, "accepted")]

    cli("alice", "image", "delete", uploaded["id"], imported["id"])
    remaining = {image["ID"] for image in cli("admin", "image", "list", "-f", "json")}

    assert not {uploaded["id"], imported["id"]} & remaining
