"""Unchanged clients against a server whose stores come from an operator's glance-api.conf: a
file store, a Swift store and an S3 store on the real Swift (``scripts/swift-aio.sh``).

Upload to each store, copy between them with copy-image, ranged downloads, removal of one
store's copy and image delete, each checked in the backend itself with swiftclient and boto3.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import time
import urllib.request
import uuid

import boto3
import glanceclient
import pytest
import swiftclient
from botocore.config import Config

from tests.conftest import SWIFT_AIO
from tests.live.helpers import make_payload, run_glance

MiB = 1024 * 1024
CONF = """\
[DEFAULT]
enabled_backends = fast:file, objects:swift, cheap:s3

[glance_store]
default_backend = fast

[fast]
filesystem_store_datadir = {data_dir}/fast
store_description = Local disk

[objects]
swift_store_auth_address = {SWIFT_AUTH_URL}
swift_store_auth_version = {SWIFT_AUTH_VERSION}
swift_store_user = {SWIFT_USER}
swift_store_key = {SWIFT_KEY}
swift_store_container = {container}
swift_store_create_container_on_put = true
swift_store_large_object_size = 5
swift_store_large_object_chunk_size = 2

[cheap]
s3_store_host = {S3_ENDPOINT}
s3_store_access_key = {S3_ACCESS_KEY}
s3_store_secret_key = {S3_SECRET_KEY}
s3_store_bucket = {bucket}
s3_store_create_bucket_on_put = true
s3_store_bucket_url_format = path
s3_store_region_name = {S3_REGION}
s3_store_large_object_size = 5
s3_store_large_object_chunk_size = 5
"""


@pytest.fixture(scope="module")
def backends(swift_service) -> dict[str, str]:
    suffix = uuid.uuid4().hex[:12]
    # s3api keeps buckets as containers of the same account: the names must differ.
    return {**swift_service, "container": f"live-swift-{suffix}", "bucket": f"live-s3-{suffix}"}


@pytest.fixture(scope="module")
def service(extra_live_service, live_service, backends, tmp_path_factory):
    conf = tmp_path_factory.mktemp("glance-conf") / "glance-api.conf"
    conf.write_text(CONF.format(data_dir=live_service.data_dir, **backends))
    # Imports run in the request, so no worker with this configuration is needed.
    return extra_live_service(GLANCE_API_CONF=str(conf), IMPORT_JOBS_SYNC="1")


@pytest.fixture(scope="module")
def swift(backends) -> swiftclient.Connection:
    return swiftclient.Connection(
        authurl=backends["SWIFT_AUTH_URL"],
        user=backends["SWIFT_USER"],
        key=backends["SWIFT_KEY"],
        auth_version=backends["SWIFT_AUTH_VERSION"],
    )


@pytest.fixture(scope="module")
def s3(backends):
    return boto3.client(
        "s3",
        endpoint_url=backends["S3_ENDPOINT"],
        aws_access_key_id=backends["S3_ACCESS_KEY"],
        aws_secret_access_key=backends["S3_SECRET_KEY"],
        region_name=backends["S3_REGION"],
        config=Config(s3={"addressing_style": "path"}),
    )


def swift_aio(command: str) -> None:
    subprocess.run([str(SWIFT_AIO), command], check=True, capture_output=True, timeout=120)


def wait_for(condition, what: str, seconds: float = 30):
    deadline = time.monotonic() + seconds
    while not (result := condition()):
        assert time.monotonic() < deadline, f"not {what} within {seconds}s"
        time.sleep(0.1)
    return result


def swift_names(swift, backends, image_id: str) -> list[str]:
    try:
        _, objects = swift.get_container(backends["container"], full_listing=True)
    except swiftclient.ClientException as error:
        if error.http_status == 404:  # the store creates its container with its first object
            return []
        raise
    return sorted(entry["name"] for entry in objects if image_id in entry["name"])


def s3_keys(s3, backends, image_id: str) -> list[str]:
    listing = s3.list_objects_v2(Bucket=backends["bucket"]).get("Contents", [])
    uploads = s3.list_multipart_uploads(Bucket=backends["bucket"]).get("Uploads", [])
    keys = [entry["Key"] for entry in listing] + [f"upload {u['Key']}" for u in uploads]
    return sorted(key for key in keys if image_id in key)


def api(service, method: str, path: str, *, token: str, headers: dict | None = None):
    request = urllib.request.Request(
        f"{service.url}{path}", method=method, headers={"X-Auth-Token": token, **(headers or {})}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, response.headers, response.read()


def show(service, image_id: str) -> dict:
    return json.loads(api(service, "GET", f"/v2/images/{image_id}", token=service.user.token)[2])


@pytest.fixture
def client(service):
    return glanceclient.Client("2", endpoint=service.url, token=service.user.token)


def test_stores_of_the_glance_file_are_offered(service):
    _, _, body = api(service, "GET", "/v2/info/stores/detail", token=service.operator.token)

    stores = {entry["id"]: entry for entry in json.loads(body)["stores"]}
    assert {name: entry["type"] for name, entry in stores.items()} == {
        "fast": "file",
        "objects": "swift",
        "cheap": "s3",
    }
    assert stores["fast"]["default"] == "true"
    assert stores["fast"]["description"] == "Local disk"
    assert "testing" not in body.decode()  # no credentials, ever


def test_glance_cli_uploads_to_swift_and_downloads_byte_exact(
    service, swift, backends, tmp_path, unique
):
    payload = make_payload(tmp_path, 7 * MiB + 3)
    created = run_glance(
        service,
        "image-create",
        "--name",
        f"swift-{unique}",
        "--disk-format",
        "raw",
        "--container-format",
        "bare",
        "--file",
        str(payload.path),
        "--store",
        "objects",
    )
    image_id = next(line.split("|")[2].strip() for line in created.splitlines() if "| id " in line)
    downloaded = tmp_path / "downloaded"

    run_glance(service, "image-download", "--file", str(downloaded), image_id)

    image = show(service, image_id)
    assert (image["status"], image["stores"], image["checksum"]) == (
        "active",
        "objects",
        payload.md5,
    )
    assert downloaded.read_bytes() == payload.data
    names = swift_names(swift, backends, image_id)
    assert image_id in names and len(names) > 2  # the manifest and its segments
    _, stored = swift.get_object(backends["container"], image_id)
    assert stored == payload.data


def test_glanceclient_uploads_to_s3_and_serves_ranges(
    service, client, s3, backends, tmp_path, unique
):
    payload = make_payload(tmp_path, 11 * MiB + 5)
    image = client.images.create(name=f"s3-{unique}", disk_format="raw", container_format="bare")

    with payload.path.open("rb") as data:  # chunked: glanceclient never sends a length
        client.images.upload(image["id"], data, backend="cheap")
    status, headers, part = api(
        service,
        "GET",
        f"/v2/images/{image['id']}/file",
        token=service.user.token,
        headers={"Range": f"bytes={5 * MiB - 2}-{5 * MiB + 1}"},
    )

    assert show(service, image["id"])["stores"] == "cheap"
    assert (status, part) == (206, payload.data[5 * MiB - 2 : 5 * MiB + 2])
    assert headers["Content-Range"] == f"bytes {5 * MiB - 2}-{5 * MiB + 1}/{len(payload.data)}"
    assert s3_keys(s3, backends, image["id"]) == [image["id"]]
    stored = s3.get_object(Bucket=backends["bucket"], Key=image["id"])["Body"].read()
    assert stored == payload.data


def test_copy_image_between_all_store_types_then_remove_copies_and_delete(
    service, client, swift, s3, backends, tmp_path, unique
):
    payload = make_payload(tmp_path, 6 * MiB + 1)
    image = client.images.create(name=f"copy-{unique}", disk_format="raw", container_format="bare")
    with payload.path.open("rb") as data:
        client.images.upload(image["id"], data, backend="fast")

    as_operator = dataclasses.replace(service, user=service.operator)  # copy_image: admin only
    run_glance(
        as_operator,
        "image-import",
        "--import-method",
        "copy-image",
        "--stores",
        "objects,cheap",
        image["id"],
    )

    shown = show(service, image["id"])
    assert set(shown["stores"].split(",")) == {"fast", "objects", "cheap"}
    assert swift.get_object(backends["container"], image["id"])[1] == payload.data
    assert s3.get_object(Bucket=backends["bucket"], Key=image["id"])["Body"].read() == (
        payload.data
    )

    for store in ("fast", "objects"):
        status, _, _ = api(
            service,
            "DELETE",
            f"/v2/stores/{store}/{image['id']}",
            token=service.operator.token,
        )
        assert status == 204
    assert show(service, image["id"])["stores"] == "cheap"
    assert swift_names(swift, backends, image["id"]) == []
    assert b"".join(client.images.data(image["id"])) == payload.data

    client.images.delete(image["id"])

    assert s3_keys(s3, backends, image["id"]) == []


@pytest.mark.serial
def test_swift_going_away_mid_upload_is_a_503_and_nothing_stays(
    service, client, swift, backends, tmp_path, unique
):
    image = client.images.create(name=f"away-{unique}", disk_format="raw", container_format="bare")
    host, port = service.url.removeprefix("http://").split(":")
    head = (
        f"PUT /v2/images/{image['id']}/file HTTP/1.1\r\nHost: {host}\r\n"
        f"X-Auth-Token: {service.user.token}\r\nX-Image-Meta-Store: objects\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {8 * MiB}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port))) as upload:
        upload.sendall(head + os.urandom(3 * MiB))
        wait_for(lambda: swift_names(swift, backends, image["id"]), "segments in Swift")
        swift_aio("stop-proxy")
        try:
            upload.sendall(os.urandom(5 * MiB))
            upload.settimeout(60)
            answer = b"".join(iter(lambda: upload.recv(65536), b"")).decode("latin-1")
        finally:
            swift_aio("start-proxy")

    assert answer.startswith("HTTP/1.1 503 "), answer
    assert show(service, image["id"])["status"] == "queued"
    service.manage("cleanup_stores")
    assert swift_names(swift, backends, image["id"]) == []
    payload = make_payload(tmp_path, 3 * MiB)
    with payload.path.open("rb") as data:
        client.images.upload(image["id"], data, backend="objects")
    assert swift.get_object(backends["container"], image["id"])[1] == payload.data
