"""The Swift store beyond the contract, against the real Swift of ``scripts/swift-aio.sh``: its
layout, data Glance wrote, authentication, and the store going away."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest

from images.storage import swift_upload
from images.storage.base import ByteRange, new_attempt
from images.storage.stores import all_stores, driver_for, prepare_stores
from images.storage.swift_options import swift_settings
from imageservice.errors import GlanceError
from tests.conftest import SWIFT_AIO
from tests.storage.swift_support import MB, SwiftContainer, fresh_container, swift_options
from tests.storage.test_contract import LARGE, MiB, image_id, read_all, write


@pytest.fixture
def container(request) -> SwiftContainer:
    return fresh_container(request)


@pytest.fixture
def store(container):
    built = container.store()
    assert built.prepare() is None
    return built


def wait_for(condition, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# --- layout and location ---------------------------------------------------------------------


def test_location_names_the_reference_not_the_credentials(store, container):
    image = image_id()

    url = store.url_for(image)

    assert url == f"swift+config://ref1/{container.name}/{image}"
    assert container.facts["SWIFT_KEY"] not in url
    assert container.facts["SWIFT_USER"] not in url


def test_location_reference_follows_default_swift_reference(container):
    store = container.store(default_swift_reference="glance-account")

    assert store.url_for("x") == f"swift+config://glance-account/{container.name}/x"


def test_commit_puts_one_slo_manifest_over_the_attempts_segments(store, container):
    image, attempt, data = image_id(), new_attempt(), os.urandom(LARGE)
    sink = write(store, image, data, attempt=attempt)
    sink.finish()
    assert not store.has_data(image)
    assert container.objects(image)[-1] == f"{image}-{attempt}-writing"

    sink.commit()

    segments = [f"{image}-{attempt}-{number:05d}" for number in range(1, 10)]
    assert container.objects(image) == [image, *segments]
    assert container.client.head_object(container.name, image)["x-static-large-object"] == "True"
    heads = [container.client.head_object(container.name, name) for name in segments]
    sizes = [int(head["content-length"]) for head in heads]
    assert sizes == [5 * MB] + [MB] * 7 + [LARGE - 12 * MB]


@pytest.mark.parametrize("size", [0, 3 * MiB])
def test_image_up_to_large_object_size_is_one_segment(store, container, size):
    image, attempt, data = image_id(), new_attempt(), os.urandom(size)

    write(store, image, data, attempt=attempt).commit()

    assert container.objects(image) == [image, f"{image}-{attempt}-00001"]
    assert read_all(store, image) == data


def test_more_segments_than_a_manifest_holds_go_through_submanifests(store, container, monkeypatch):
    monkeypatch.setattr(swift_upload, "MANIFEST_SEGMENTS", 4)
    image, attempt, data = image_id(), new_attempt(), os.urandom(LARGE)

    write(store, image, data, attempt=attempt).commit()

    names = container.objects(image)
    assert [name for name in names if "-manifest-" in name] == [
        f"{image}-{attempt}-manifest-{number:05d}" for number in (1, 2, 3)
    ]
    assert read_all(store, image) == data
    assert (
        read_all(store, image, ByteRange(4 * MB - 5, 9 * MB + 5)) == data[4 * MB - 5 : 9 * MB + 6]
    )
    assert store.sweep(lambda image, attempt: False) == []
    store.delete(image)
    assert container.objects(image) == []


# --- data as Glance writes it ------------------------------------------------------------------


def glance_dlo(container: SwiftContainer, image: str, data: bytes) -> None:
    """A Dynamic Large Object as glance_store writes one: segments, then the manifest."""
    client, name = container.client, container.name
    for number, start in enumerate(range(0, len(data), MiB), start=1):
        client.put_object(name, f"{image}-{number:05d}", data[start : start + MiB])
    client.put_object(name, image, b"", headers={"X-Object-Manifest": f"{name}/{image}-"})


def test_reads_a_dlo_as_glance_writes_it_whole_and_by_range(store, container):
    image, data = image_id(), os.urandom(3 * MiB + 5)
    glance_dlo(container, image, data)

    assert store.has_data(image)
    assert read_all(store, image) == data
    assert read_all(store, image, ByteRange(MiB - 2, 2 * MiB + 1)) == data[MiB - 2 : 2 * MiB + 2]


def test_deleting_a_dlo_removes_its_segments(store, container):
    image = image_id()
    glance_dlo(container, image, os.urandom(3 * MiB + 5))

    store.delete(image)

    assert container.objects(image) == []


def test_sweep_leaves_a_glance_dlo_alone(store, container):
    image, data = image_id(), os.urandom(2 * MiB)
    glance_dlo(container, image, data)

    assert store.sweep(lambda image, attempt: False) == []
    assert read_all(store, image) == data


# --- preparing and authenticating --------------------------------------------------------------


def test_prepare_with_a_wrong_key_names_the_problem_and_other_stores_work(settings, container):
    settings.ENABLED_BACKENDS = {
        "good": swift_options(container.facts, container.name),
        "bad": swift_options(container.facts, container.name, swift_store_key="wrong"),
    }

    problems = prepare_stores()

    auth = container.facts["SWIFT_AUTH_URL"]
    assert problems == [f"bad: cannot authenticate at {auth}: 401 Unauthorized"]
    good, image, data = all_stores()["good"], image_id(), os.urandom(MiB)
    write(good, image, data).commit()
    assert read_all(good, image) == data
    with pytest.raises(GlanceError) as refused:
        all_stores()["bad"].read(image)
    assert refused.value.status_code == 503


def test_prepare_without_the_container_and_no_creation_names_the_problem(container):
    store = container.store(swift_store_create_container_on_put="false")

    problem = store.prepare()

    assert problem == (
        f"objects: container {store.container} does not exist and "
        "swift_store_create_container_on_put is false"
    )
    with pytest.raises(GlanceError) as refused:
        store.open_write(image_id(), new_attempt())
    assert refused.value.status_code == 503


def test_prepare_creates_the_container_when_allowed(container):
    store = container.store()

    assert store.prepare() is None
    assert container.client.head_container(container.name)["x-container-object-count"] == "0"


def test_prepare_of_an_unreachable_store_says_it_cannot_connect():
    options = {
        "swift_store_auth_address": "http://127.0.0.1:1/auth/v1.0",
        "swift_store_auth_version": "1",
        "swift_store_user": "test:tester",
        "swift_store_key": "testing",
    }
    store = driver_for("swift").from_options("objects", options)

    assert store.prepare() == "objects: cannot connect to http://127.0.0.1:1: Connection refused"


def test_account_from_a_swift_store_config_file(container, tmp_path):
    facts = container.facts
    config = tmp_path / "glance-swift.conf"
    config.write_text(
        "[objects-account]\n"
        f"auth_address = {facts['SWIFT_AUTH_URL']}\n"
        f"user = {facts['SWIFT_USER']}\n"
        f"key = '{facts['SWIFT_KEY']}'\n"
        "auth_version = 1\n"
    )
    options = swift_options(facts, container.name)
    for name in ("swift_store_auth_address", "swift_store_user", "swift_store_key"):
        del options[name]
    options |= {
        "swift_store_config_file": str(config),
        "default_swift_reference": "objects-account",
    }
    store = driver_for("swift").from_options("objects", options)

    assert store.prepare() is None
    assert store.url_for("x") == f"swift+config://objects-account/{container.name}/x"


def forget_every_token(facts: dict[str, str]) -> None:
    """Empty tempauth's memcached: every token issued so far stops being valid."""
    recorded = (Path(facts["SWIFT_AIO_DIR"]) / "settings.env").read_text().split()
    port = int(dict(line.split("=", 1) for line in recorded)["REC_MEMCACHED_PORT"])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as memcached:
        memcached.sendall(b"flush_all\r\n")
        assert memcached.recv(64) == b"OK\r\n"


@pytest.mark.serial  # every token of the shared Swift, other tests' too
def test_an_upload_outlives_its_token(store, container):
    image, attempt, data = image_id(), new_attempt(), os.urandom(LARGE)
    sink = write(store, image, data[: 6 * MiB], attempt=attempt)
    wait_for(lambda: f"{image}-{attempt}-00001" in container.objects(image))

    forget_every_token(container.facts)
    for start in range(6 * MiB, len(data), MiB):
        sink.write(data[start : start + MiB])
    sink.commit()

    assert read_all(store, image) == data


# --- failures ----------------------------------------------------------------------------------


@pytest.fixture
def proxy(swift_service):
    """Stops and starts the Swift proxy; it runs again after the test, whatever happened."""

    def run(command: str) -> None:
        subprocess.run([str(SWIFT_AIO), command], check=True, capture_output=True, timeout=120)

    yield run
    run("start-proxy")


@pytest.mark.serial
def test_store_going_away_mid_upload_is_a_503_and_sweep_removes_what_was_left(
    store, container, proxy
):
    image, attempt = image_id(), new_attempt()
    sink = write(store, image, os.urandom(7 * MiB), attempt=attempt)
    wait_for(lambda: f"{image}-{attempt}-00001" in container.objects(image))

    proxy("stop-proxy")
    started = time.monotonic()
    with pytest.raises(GlanceError) as failed:
        for _ in range(64):
            sink.write(os.urandom(MiB))
        sink.commit()
    sink.abort()  # nothing can be removed now: it must return, not wait for Swift
    elapsed = time.monotonic() - started
    proxy("start-proxy")

    assert failed.value.status_code == 503
    assert failed.value.message.startswith("Store objects is not available: ")
    assert elapsed < store.request_timeout
    # The segments finished before the proxy went, and the marker of the attempt.
    left = container.objects(image)
    assert {f"{image}-{attempt}-00001", f"{image}-{attempt}-writing"} <= set(left)
    assert all(name.startswith(f"{image}-{attempt}-") for name in left)
    assert sorted(store.sweep(lambda image, attempt: False)) == left
    assert container.objects(image) == []
    data = os.urandom(2 * MiB)
    write(store, image, data).commit()
    assert read_all(store, image) == data


@pytest.mark.serial
def test_read_while_the_store_is_down_is_a_503(store, proxy):
    image, data = image_id(), os.urandom(MiB)
    write(store, image, data).commit()

    proxy("stop-proxy")
    with pytest.raises(GlanceError) as unavailable:
        store.read(image)

    assert unavailable.value.status_code == 503


def test_download_of_data_that_vanished_is_a_404(store, container):
    image = image_id()
    write(store, image, os.urandom(MiB)).commit()
    container.client.delete_object(container.name, image)

    with pytest.raises(GlanceError) as missing:
        store.read(image)

    assert missing.value.status_code == 404
    assert not store.has_data(image)


# --- options -----------------------------------------------------------------------------------

ACCOUNT = {
    "swift_store_auth_address": "http://swift.example:8080/auth/v1.0",
    "swift_store_user": "test:tester",
    "swift_store_key": "testing",
}


def test_defaults_are_glance_stores():
    settings = swift_settings(ACCOUNT)

    assert settings.account.auth_version == "3"
    assert (settings.container, settings.create_container) == ("glance", False)
    assert settings.large_object_size == 5120 * 1000 * 1024
    assert settings.large_object_chunk_size == 200 * 1000 * 1024
    assert settings.account.user_domain_id == settings.account.project_domain_id == "default"


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("swift_store_auth_version", "2", "swift_store_auth_version must be 1 (tempauth) or 3"),
        ("swift_store_large_object_size", "0", "swift_store_large_object_size must be at least 1"),
        ("swift_store_large_object_chunk_size", "big", "must be a whole number of MB"),
        ("swift_store_create_container_on_put", "maybe", "must be true or false, got 'maybe'"),
        ("swift_store_user", "tester", "swift_store_user must be project:user for auth version 3"),
        ("swift_store_auth_address", "swift.example", "the auth address must be an http(s) URL"),
        ("swift_store_container", "a/b", "swift_store_container must be a container name"),
        ("swift_store_endpoint_type", "public", "swift_store_endpoint_type must be one of"),
        ("swift_store_key", "", "needs swift_store_key (or swift_store_config_file)"),
    ],
)
def test_bad_option_is_a_value_error_naming_it(option, value, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        swift_settings({**ACCOUNT, option: value})


def test_missing_reference_in_the_config_file_is_a_value_error(tmp_path):
    config = tmp_path / "glance-swift.conf"
    config.write_text("[other]\nauth_address = http://x\nuser = a:b\nkey = c\n")

    with pytest.raises(ValueError, match=r"has no \[ref1\] section"):
        swift_settings({"swift_store_config_file": str(config)})
