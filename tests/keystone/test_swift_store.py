"""A Swift store that authenticates with Keystone v3 (``swift_store_auth_version = 3``, the
only kind glance_store still accepts), against a real Swift whose proxy validates Keystone
tokens (``scripts/swift-aio.sh`` with ``SWIFT_AIO_KEYSTONE_URL``) and the real Keystone.

The store finds its Swift in Keystone's catalog, as glance_store does: the object-store
endpoint of the service project, account ``KEY_<project id>``. The store contract tests run
against it unchanged, then an upload and download through the Image API.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from keystoneauth1 import session
from swiftclient import ClientException, Connection

from images.storage.base import ImageStore
from images.storage.stores import driver_for
from tests.storage.conftest import StoreUnderTest
from tests.storage.test_contract import (  # noqa: F401 (collected here against this store)
    test_abort_leaves_nothing_behind,
    test_committed_write_reads_back_byte_exact,
    test_delete_removes_the_data_and_every_part_of_it,
    test_ranged_read_crosses_segment_boundaries,
    test_read_of_missing_data_is_a_404_before_any_byte,
    test_sweep_removes_what_dead_writes_left_and_nothing_else,
    test_two_attempts_write_apart_and_an_abort_keeps_the_other_ones_data,
    test_unknown_size_stream_through_the_pipeline_hashes_what_was_stored,
)
from tests.support import JSON

SWIFT_AIO = Path(__file__).resolve().parents[2] / "scripts" / "swift-aio.sh"
# A Swift of these tests' own, beside the tempauth-only ones the other store tests use.
KEYSTONE_SWIFT = {
    "SWIFT_AIO_DIR": os.path.join(tempfile.gettempdir(), "imageservice-swift-keystone"),
    "SWIFT_AIO_PORT": "8094",
    "SWIFT_AIO_OBJECT_PORT": "6220",
    "SWIFT_AIO_CONTAINER_PORT": "6221",
    "SWIFT_AIO_ACCOUNT_PORT": "6222",
    "SWIFT_AIO_MEMCACHED_PORT": "11214",
}
MiB = 1024 * 1024


def swift_aio(*arguments: str, extra: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SWIFT_AIO), *arguments],
        env={**os.environ, **KEYSTONE_SWIFT, **extra},
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def keystone_swift(keystone) -> dict[str, str]:
    """The Keystone-backed Swift, started on first use and left running (as the others)."""
    started = swift_aio("start", extra={"SWIFT_AIO_KEYSTONE_URL": keystone.auth_url})
    assert started.returncode == 0, f"swift-aio.sh start failed:\n{started.stdout}{started.stderr}"
    facts = swift_aio("status", "env", extra={})
    return dict(line.split("=", 1) for line in facts.stdout.splitlines() if "=" in line)


@dataclass
class KeystoneContainer:
    """A container of one test in the service project's account, seen through swiftclient."""

    options: dict[str, str]
    client: Connection

    @property
    def name(self) -> str:
        return self.options["swift_store_container"]

    def store(self) -> ImageStore:
        return driver_for("swift").from_options("objects", self.options)

    def objects(self, containing: str = "") -> list[str]:
        try:
            _, listing = self.client.get_container(self.name, full_listing=True)
        except ClientException as error:
            if error.http_status == 404:
                return []
            raise
        return sorted(entry["name"] for entry in listing if containing in entry["name"])

    def remove(self) -> None:
        for name in self.objects():
            self.client.delete_object(self.name, name)
        try:
            self.client.delete_container(self.name)
        except ClientException as error:
            if error.http_status != 404:
                raise


@pytest.fixture
def container(request, keystone, keystone_swift) -> KeystoneContainer:
    options = {
        "type": "swift",
        "swift_store_auth_address": keystone.auth_url,
        "swift_store_auth_version": "3",
        "swift_store_user": "service:glance",
        "swift_store_key": keystone.password("glance"),
        "swift_store_container": f"test-{uuid.uuid4().hex}",
        "swift_store_create_container_on_put": "true",
        # 12 MiB contract images have segments of 1 MB.
        "swift_store_large_object_size": "5",
        "swift_store_large_object_chunk_size": "1",
    }
    client = Connection(session=session.Session(auth=keystone.auth("glance")), retries=1)
    made = KeystoneContainer(options, client)
    request.addfinalizer(made.remove)
    return made


@pytest.fixture
def under_test(container) -> StoreUnderTest:
    store = container.store()
    assert store.prepare() is None
    return StoreUnderTest(store, container.objects)


def test_the_store_writes_into_the_service_projects_account_from_the_catalog(
    container, keystone, keystone_swift
):
    store = container.store()
    assert store.prepare() is None

    account = container.client.get_auth()[0]

    prefix = keystone_swift["SWIFT_KEYSTONE_ACCOUNT_PREFIX"]
    assert account == f"http://127.0.0.1:8094/v1/{prefix}{keystone.project_id('service')}"
    container.client.head_container(container.name)  # made by prepare, in that account


def test_a_wrong_password_is_named_at_start_up(container, keystone):
    options = {**container.options, "swift_store_key": "not-the-password"}

    problem = driver_for("swift").from_options("objects", options).prepare()

    assert problem == f"objects: cannot authenticate at {keystone.auth_url}: 401 Unauthorized"


def test_upload_and_download_through_the_api(settings, owner, make_image, container):
    settings.ENABLED_BACKENDS = {"objects": container.options}
    image = make_image(disk_format="raw", container_format="bare")
    data = os.urandom(6 * MiB + 5)

    uploaded = owner.client().put(
        f"/v2/images/{image.id}/file", data=data, content_type="application/octet-stream"
    )
    shown = owner.client().get(f"/v2/images/{image.id}", HTTP_ACCEPT=JSON).json()
    downloaded = owner.client().get(f"/v2/images/{image.id}/file")

    assert uploaded.status_code == 204
    assert (shown["status"], shown["size"], shown["stores"]) == ("active", len(data), "objects")
    assert b"".join(downloaded.streaming_content) == data
    # A manifest and its segments, in Keystone's account for the service project.
    assert container.objects(str(image.id))[0] == str(image.id)
    assert len(container.objects(str(image.id))) > 2

    deleted = owner.client().delete(f"/v2/images/{image.id}")

    assert deleted.status_code == 204
    assert container.objects(str(image.id)) == []
