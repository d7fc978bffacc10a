"""Image data through real clients against the live server: uploads and downloads with
glanceclient (chunked), the ``glance`` CLI, openstacksdk (Content-Length), clients that vanish
mid-upload, and the image size cap. Every check is exact: sizes, MD5 and SHA-512 computed here,
the image record the API serves, and the files in the store directory (DATA_DIR/images)."""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.request
from urllib.parse import urlsplit

import glanceclient
import openstack
import pytest
from glanceclient import exc

from tests.live.helpers import Payload, make_payload, property_table, run_glance

MiB = 1024 * 1024
SIZE_CAP = MiB
POLL_SECONDS = 10

# openstacksdk 4.22 raises its own "removed in SDK 5.0/6.0" warnings from ordinary calls.
pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning:openstack.*")


@pytest.fixture(scope="module")
def payload(tmp_path_factory) -> Payload:
    """~20 MiB of random bytes, deliberately not a multiple of any chunk size."""
    return make_payload(tmp_path_factory.mktemp("payload"), 20 * MiB + 12345)


# --- helpers: the API and the store as the server sees them ---------------------------------


def api(service, account, method: str, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"{service.url}{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"X-Auth-Token": account.token, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"{}")


def create_raw_image(service, name: str) -> str:
    body = {"name": name, "disk_format": "raw", "container_format": "bare"}
    return api(service, service.user, "POST", "/v2/images", body)["id"]


def show(service, image_id: str) -> dict:
    return api(service, service.user, "GET", f"/v2/images/{image_id}")


def store_entries(service, image_id: str) -> list[str]:
    """Names in the store directory that belong to the image (its file or an upload's
    ``.<id>.<attempt>.partial``)."""
    if not service.store_dir.exists():
        return []
    return sorted(entry.name for entry in service.store_dir.iterdir() if image_id in entry.name)


def wait_for(condition, what: str):
    """Poll ``condition`` (bounded) until it returns something truthy; return that."""
    deadline = time.monotonic() + POLL_SECONDS
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} within {POLL_SECONDS}s")
        time.sleep(0.05)


def assert_active_with(service, image_id: str, payload: Payload) -> dict:
    image = show(service, image_id)
    assert image["status"] == "active"
    assert image["size"] == len(payload.data)
    assert image["checksum"] == payload.md5
    assert (image["os_hash_algo"], image["os_hash_value"]) == ("sha512", payload.sha512)
    # raw + bare is inspected: raw data's virtual size is its byte size.
    assert image["virtual_size"] == len(payload.data)
    # Exactly one file under the image's id, holding exactly the uploaded bytes.
    assert store_entries(service, image_id) == [image_id]
    assert (service.store_dir / image_id).read_bytes() == payload.data
    return image


def assert_queued_without_data(service, image_id: str) -> None:
    image = show(service, image_id)
    assert image["status"] == "queued"
    assert image["size"] is None
    assert image["virtual_size"] is None
    assert image["checksum"] is None
    assert (image["os_hash_algo"], image["os_hash_value"]) == (None, None)
    assert store_entries(service, image_id) == []


# --- 1. python-glanceclient: chunked upload, verified download -------------------------------


@pytest.fixture
def user_glance(live_service):
    return glanceclient.Client("2", endpoint=live_service.url, token=live_service.user.token)


def record_requests(client) -> list:
    """Every request glanceclient's requests session sends, as prepared (headers included)."""
    sent = []
    session = client.http_client.session
    original = session.send

    def send(request, **kwargs):
        sent.append(request)
        return original(request, **kwargs)

    session.send = send
    return sent


def test_glanceclient_chunked_upload_and_download_are_byte_exact(
    live_service, user_glance, payload, unique
):
    image_id = user_glance.images.create(
        name=f"data-gc-{unique}", disk_format="raw", container_format="bare"
    )["id"]
    sent = record_requests(user_glance)

    with payload.path.open("rb") as data:
        user_glance.images.upload(image_id, data)

    (upload,) = [request for request in sent if request.method == "PUT"]
    assert upload.url == f"{live_service.url}/v2/images/{image_id}/file"
    assert upload.headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in upload.headers
    assert "x-openstack-image-size" not in upload.headers
    image = assert_active_with(live_service, image_id, payload)
    assert user_glance.images.get(image_id)["os_hash_value"] == image["os_hash_value"]

    # glanceclient hashes the stream against os_hash_value itself and raises on a mismatch.
    body = user_glance.images.data(image_id)
    assert b"".join(body) == payload.data

    response = user_glance.http_client.get(f"/v2/images/{image_id}/file")[0]
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Length"] == str(len(payload.data))
    assert response.headers["Content-MD5"] == payload.md5
    response.close()


# --- 2. the glance CLI -----------------------------------------------------------------------


def test_glance_cli_create_with_file_and_download_are_byte_exact(live_service, tmp_path, unique):
    payload = make_payload(tmp_path, 6 * MiB + 789)
    mark = live_service.access_log_mark()

    create = [
        "image-create",
        "--name", f"data-cli-{unique}",
        "--file", str(payload.path),
        "--disk-format", "raw",
        "--container-format", "bare",
    ]  # fmt: skip
    created = property_table(run_glance(live_service, *create))

    image_id = created["id"]
    assert (created["status"], created["size"]) == ("active", str(len(payload.data)))
    assert created["checksum"] == payload.md5
    # The table cuts values at 80 characters: the full SHA-512 is checked through the API.
    assert payload.sha512.startswith(created["os_hash_value"])
    assert_active_with(live_service, image_id, payload)
    file_requests = [
        (method, status)
        for method, path, status in live_service.requests_since(
            mark, path_prefix=f"/v2/images/{image_id}/file", at_least=1
        )
    ]
    assert file_requests == [("PUT", 204)]

    output = tmp_path / "downloaded.raw"
    run_glance(live_service, "image-download", "--file", str(output), image_id)
    assert output.read_bytes() == payload.data


# --- 3. openstacksdk: Content-Length upload, verified download -------------------------------


@pytest.fixture
def user_sdk(live_service):
    with openstack.connection.Connection(
        auth_type="admin_token",
        auth={"endpoint": live_service.url, "token": live_service.user.token},
        image_endpoint_override=live_service.url,
    ) as connection:
        yield connection


@pytest.mark.filterwarnings(
    # create_image(filename=...) opens the file itself and never closes it.
    "ignore:unclosed file:ResourceWarning"
)
def test_openstacksdk_create_with_filename_and_download_are_byte_exact(
    live_service, user_sdk, payload, tmp_path, unique
):
    mark = live_service.access_log_mark()

    image = user_sdk.image.create_image(
        name=f"data-sdk-{unique}",
        filename=str(payload.path),
        disk_format="raw",
        container_format="bare",
        validate_checksum=True,
    )

    # validate_checksum compared the server's checksum with the local MD5 and kept the image.
    assert_active_with(live_service, image.id, payload)
    fetched = user_sdk.image.get_image(image.id)
    assert (fetched.status, fetched.size, fetched.checksum) == (
        "active",
        len(payload.data),
        payload.md5,
    )
    assert (fetched.hash_algo, fetched.hash_value) == ("sha512", payload.sha512)
    assert fetched.properties["owner_specified.openstack.md5"] == payload.md5
    requests = live_service.requests_since(
        mark, path_prefix=f"/v2/images/{image.id}/file", at_least=1
    )
    assert [(method, status) for method, _, status in requests] == [("PUT", 204)]

    # Both verify os_hash_value while reading and raise on a mismatch.
    output = tmp_path / "sdk-download.raw"
    user_sdk.image.download_image(image, output=str(output))
    assert output.read_bytes() == payload.data
    response = user_sdk.image.download_image(image.id, stream=True)
    try:
        assert response.headers["Content-Length"] == str(len(payload.data))
        assert b"".join(response.iter_content(chunk_size=MiB)) == payload.data
    finally:
        response.close()


# --- 4. clients that disconnect mid-upload ---------------------------------------------------


def put_headers(service, image_id: str, framing: str) -> bytes:
    host = service.url.removeprefix("http://")
    return (
        f"PUT /v2/images/{image_id}/file HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        f"X-Auth-Token: {service.user.token}\r\n"
        "Content-Type: application/octet-stream\r\n"
        f"{framing}\r\n"
        "\r\n"
    ).encode()


def abandon_upload(service, image_id: str, head: bytes, sent: bytes) -> None:
    """Send ``head`` and ``sent`` on a raw socket, wait until the server is storing the data
    (status ``saving`` and the upload's ``.partial`` file), then drop the connection."""
    address = urlsplit(service.url)
    with socket.create_connection((address.hostname, address.port)) as sock:
        sock.sendall(head + sent)
        wait_for(lambda: show(service, image_id)["status"] == "saving", "saving")
        wait_for(lambda: list(service.store_dir.glob(f".{image_id}.*.partial")), "a partial file")
        assert not (service.store_dir / image_id).exists()


def wait_until_queued(service, image_id: str) -> None:
    wait_for(
        lambda: (image := show(service, image_id))["status"] == "queued" and image["size"] is None,
        "queued again",
    )
    assert_queued_without_data(service, image_id)


def test_content_length_upload_cut_off_leaves_the_image_queued_and_no_file(live_service, unique):
    image_id = create_raw_image(live_service, f"data-cut-length-{unique}")
    head = put_headers(live_service, image_id, f"Content-Length: {10 * MiB}")

    abandon_upload(live_service, image_id, head, os.urandom(MiB))

    wait_until_queued(live_service, image_id)


def test_chunked_upload_cut_mid_chunk_leaves_the_image_queued_and_no_file(live_service, unique):
    image_id = create_raw_image(live_service, f"data-cut-chunked-{unique}")
    head = put_headers(live_service, image_id, "Transfer-Encoding: chunked")
    # One whole 1 MiB chunk, then half of a second one announced as 1 MiB.
    whole = b"%x\r\n" % MiB + os.urandom(MiB) + b"\r\n"
    half = b"%x\r\n" % MiB + os.urandom(MiB // 2)

    abandon_upload(live_service, image_id, head, whole + half)

    wait_until_queued(live_service, image_id)


def test_image_can_be_uploaded_after_an_abandoned_upload(live_service, tmp_path, unique):
    image_id = create_raw_image(live_service, f"data-retry-{unique}")
    head = put_headers(live_service, image_id, f"Content-Length: {4 * MiB}")
    abandon_upload(live_service, image_id, head, os.urandom(MiB))
    wait_until_queued(live_service, image_id)
    payload = make_payload(tmp_path, 3 * MiB + 1)

    client = glanceclient.Client("2", endpoint=live_service.url, token=live_service.user.token)
    with payload.path.open("rb") as data:
        client.images.upload(image_id, data)

    assert_active_with(live_service, image_id, payload)


@pytest.fixture(scope="module")
def impatient_service(extra_live_service):
    """A server that takes an upload silent for over a second for dead."""
    return extra_live_service(UPLOAD_STALE_SECONDS="1")


def test_stalled_upload_taken_over_never_activates_over_the_new_data(
    impatient_service, tmp_path, unique
):
    service = impatient_service
    image_id = create_raw_image(service, f"data-takeover-{unique}")
    head = put_headers(service, image_id, f"Content-Length: {2 * MiB}")
    address = urlsplit(service.url)
    with socket.create_connection((address.hostname, address.port)) as stalled:
        stalled.sendall(head + os.urandom(MiB))
        wait_for(lambda: list(service.store_dir.glob(f".{image_id}.*.partial")), "a partial file")
        time.sleep(2.5)  # silent for longer than UPLOAD_STALE_SECONDS
        payload = make_payload(tmp_path, 3 * MiB + 1)
        client = glanceclient.Client("2", endpoint=service.url, token=service.user.token)
        with payload.path.open("rb") as data:
            client.images.upload(image_id, data)
        assert_active_with(service, image_id, payload)

        stalled.sendall(os.urandom(MiB))  # the stalled upload wakes up and finishes
        stalled.settimeout(POLL_SECONDS)
        answer = b"".join(iter(lambda: stalled.recv(65536), b"")).decode("latin-1")

    assert answer.startswith("HTTP/1.1 409 "), answer
    assert "was taken over by another upload" in answer
    assert_active_with(service, image_id, payload)


# --- 5. the image size cap, on a second server with IMAGE_SIZE_CAP = 1 MiB -------------------


@pytest.fixture(scope="module")
def capped_service(extra_live_service):
    return extra_live_service(IMAGE_SIZE_CAP=str(SIZE_CAP))


def test_chunked_upload_over_the_size_cap_is_refused_413(capped_service, tmp_path, unique):
    image_id = create_raw_image(capped_service, f"data-cap-{unique}")
    payload = make_payload(tmp_path, SIZE_CAP + 64 * 1024)
    client = glanceclient.Client("2", endpoint=capped_service.url, token=capped_service.user.token)
    mark = capped_service.access_log_mark()

    # No image_size: chunked with no size announced, so only the streamed count can tell.
    with payload.path.open("rb") as data, pytest.raises(exc.HTTPOverLimit) as refused:
        client.images.upload(image_id, data)

    assert "The incoming image is too large" in str(refused.value)
    requests = capped_service.requests_since(
        mark, path_prefix=f"/v2/images/{image_id}/file", at_least=1
    )
    assert [(method, status) for method, _, status in requests] == [("PUT", 413)]
    assert_queued_without_data(capped_service, image_id)


def test_upload_announced_over_the_size_cap_is_refused_413_up_front(
    capped_service, tmp_path, unique
):
    image_id = create_raw_image(capped_service, f"data-cap-announced-{unique}")
    payload = make_payload(tmp_path, SIZE_CAP + 1)
    client = glanceclient.Client("2", endpoint=capped_service.url, token=capped_service.user.token)

    with payload.path.open("rb") as data, pytest.raises(exc.HTTPOverLimit):
        client.images.upload(image_id, data, image_size=len(payload.data))

    assert_queued_without_data(capped_service, image_id)


def test_chunked_upload_of_exactly_the_size_cap_is_accepted(capped_service, tmp_path, unique):
    image_id = create_raw_image(capped_service, f"data-cap-exact-{unique}")
    payload = make_payload(tmp_path, SIZE_CAP)
    client = glanceclient.Client("2", endpoint=capped_service.url, token=capped_service.user.token)

    with payload.path.open("rb") as data:
        client.images.upload(image_id, data)

    assert_active_with(capped_service, image_id, payload)
    assert b"".join(client.images.data(image_id)) == payload.data
