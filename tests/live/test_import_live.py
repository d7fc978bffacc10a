"""Interoperable image import (v2.6) end to end: real clients against the live gunicorn, the jobs
run by a real ``manage.py qcluster`` (never IMPORT_JOBS_SYNC), web-download from an HTTP server
in this process. Every check is exact: sizes, MD5 and SHA-512 computed here, the image record and
its tasks as the API serves them, and the files in the store and staging directories."""

from __future__ import annotations

import http.server
import json
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import glanceclient
import openstack
import pytest

from tests.live.helpers import Payload, make_payload, property_table, run_glance

MiB = 1024 * 1024
IMPORT_SECONDS = 30  # bound on any wait for a job
# A stalling download sends this much, then goes silent: more than the 1 MiB the server reads
# at a time, so a whole chunk reaches the partial staging file.
STALL_AFTER = 2 * MiB + 512 * 1024

# openstacksdk 4.22 raises its own "removed in SDK 5.0/6.0" warnings from ordinary calls.
pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning:openstack.*")


# --- an HTTP server for web-download, on the port the live server allows -------------------


@dataclass
class Served:
    data: bytes
    stall_first: bool = False  # the first GET sends STALL_AFTER bytes, then nothing
    requests: list[dict[str, str]] = field(default_factory=list)


class ImportSource(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), SourceHandler)
        self.files: dict[str, Served] = {}
        self.released = threading.Event()  # ends every stalled response

    def add(self, path: str, data: bytes, *, stall_first: bool = False) -> str:
        self.files[path] = Served(data, stall_first)
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class SourceHandler(http.server.BaseHTTPRequestHandler):
    server: ImportSource
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        served = self.server.files.get(self.path)
        if served is None:
            self.send_error(404)
            return
        served.requests.append(dict(self.headers.items()))
        stall = served.stall_first and len(served.requests) == 1
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(served.data)))
        self.send_header("Connection", "close")
        self.end_headers()
        if not stall:
            self.wfile.write(served.data)
            return
        self.wfile.write(served.data[:STALL_AFTER])
        self.wfile.flush()
        self.server.released.wait(IMPORT_SECONDS * 2)
        self.close_connection = True

    def log_message(self, format: str, *args) -> None:
        pass


@pytest.fixture(scope="module")
def import_source(live_service) -> ImportSource:
    server = ImportSource(live_service.import_source_port)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.released.set()
        server.shutdown()
        server.server_close()
        thread.join()


# --- helpers: the API, the store and the staging area as the server sees them -----------------


def call(service, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(
        f"{service.url}{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"X-Auth-Token": service.user.token, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


def api(service, method: str, path: str, body: dict | None = None) -> dict:
    status, content = call(service, method, path, body)
    assert status < 300, (status, content)
    return json.loads(content or b"{}")


def create_raw_image(service, name: str) -> str:
    body = {"name": name, "disk_format": "raw", "container_format": "bare"}
    return api(service, "POST", "/v2/images", body)["id"]


def show(service, image_id: str) -> dict:
    return api(service, "GET", f"/v2/images/{image_id}")


def image_tasks(service, image_id: str) -> list[dict]:
    return api(service, "GET", f"/v2/images/{image_id}/tasks")["tasks"]


def wait_for(condition, what: str, seconds: float = IMPORT_SECONDS):
    """Poll ``condition`` (bounded) until it returns something truthy; return that."""
    deadline = time.monotonic() + seconds
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} within {seconds}s")
        time.sleep(0.1)


def wait_until_active(service, image_id: str) -> dict:
    def active():
        image = show(service, image_id)
        assert image["status"] in {"uploading", "queued", "importing", "active"}, image
        return image if image["status"] == "active" else None

    return wait_for(active, f"image {image_id} active")


def assert_imported(service, image_id: str, payload: Payload) -> dict:
    """The image is active with exactly the payload's data, and the import left nothing behind."""
    image = show(service, image_id)
    assert image["status"] == "active"
    assert image["size"] == len(payload.data)
    assert image["virtual_size"] == len(payload.data)  # raw: its byte size
    assert image["checksum"] == payload.md5
    assert (image["os_hash_algo"], image["os_hash_value"]) == ("sha512", payload.sha512)
    # The lock is gone; single store: nothing importing, nothing failed.
    assert "os_glance_import_task" not in image
    assert image.get("os_glance_importing_to_stores", "") == ""
    assert image.get("os_glance_failed_import", "") == ""
    assert sorted(e.name for e in service.store_dir.iterdir() if image_id in e.name) == [image_id]
    assert (service.store_dir / image_id).read_bytes() == payload.data
    assert staged_entries(service, image_id) == []
    return image


def staged_entries(service, image_id: str) -> list[str]:
    """Names in the staging area that belong to the image (staged file, partial, work dir)."""
    if not service.staging_dir.exists():
        return []
    return sorted(e.name for e in service.staging_dir.iterdir() if image_id in e.name)


def assert_one_successful_task(service, image_id: str, method: str, payload: Payload) -> dict:
    (task,) = image_tasks(service, image_id)
    assert (task["type"], task["status"], task["image_id"]) == (
        "api_image_import",
        "success",
        image_id,
    )
    assert task["owner"] == service.user.project_id
    assert task["input"]["import_req"]["method"]["name"] == method
    assert task["result"] == {"image_id": image_id}
    assert task["message"] == ""
    assert task["expires_at"] is not None
    size = len(payload.data)
    assert task["progress"] == {"bytes_done": size, "bytes_total": size, "percent": 100}
    return task


def import_requests(service, mark: int, image_id: str) -> list[tuple[str, str, int]]:
    return [
        (method, path.removeprefix(f"/v2/images/{image_id}"), status)
        for method, path, status in service.requests_since(
            mark, path_prefix=f"/v2/images/{image_id}/", at_least=2
        )
        if path.endswith(("/stage", "/import", "/file"))
    ]


# --- 1–2. the glance CLI: image-create-via-import -------------------------------------------


def test_glance_cli_create_via_import_glance_direct(live_service, live_worker, tmp_path, unique):
    payload = make_payload(tmp_path, 3 * MiB + 4321)
    mark = live_service.access_log_mark()

    output = run_glance(
        live_service,
        "image-create-via-import",
        "--import-method", "glance-direct",
        "--file", str(payload.path),
        "--disk-format", "raw",
        "--container-format", "bare",
        "--name", f"import-cli-direct-{unique}",
        "--property", f"build={unique}",
    )  # fmt: skip

    created = property_table(output)
    image_id = created["id"]
    # The CLI shows the image right after the 202: the worker may or may not have run yet.
    assert created["status"] in {"uploading", "importing", "active"}
    assert (created["name"], created["build"]) == (f"import-cli-direct-{unique}", unique)
    wait_until_active(live_service, image_id)
    image = assert_imported(live_service, image_id, payload)
    assert image["build"] == unique
    assert import_requests(live_service, mark, image_id) == [
        ("PUT", "/stage", 204),
        ("POST", "/import", 202),
    ]
    assert_one_successful_task(live_service, image_id, "glance-direct", payload)


def test_glance_cli_create_via_import_web_download(
    live_service, live_worker, import_source, tmp_path, unique
):
    payload = make_payload(tmp_path, 2 * MiB + 777)
    uri = import_source.add(f"/cli-{unique}.raw", payload.data)

    output = run_glance(
        live_service,
        "image-create-via-import",
        "--import-method", "web-download",
        "--uri", uri,
        "--disk-format", "raw",
        "--container-format", "bare",
        "--name", f"import-cli-web-{unique}",
    )  # fmt: skip

    image_id = property_table(output)["id"]
    wait_until_active(live_service, image_id)
    assert_imported(live_service, image_id, payload)
    (task,) = image_tasks(live_service, image_id)
    assert task["input"]["import_req"] == {"method": {"name": "web-download", "uri": uri}}
    assert_one_successful_task(live_service, image_id, "web-download", payload)
    # Fetched once, by the worker's fetcher.
    (request,) = import_source.files[f"/cli-{unique}.raw"].requests
    assert request["User-Agent"] == "imageservice-web-download"


# --- 3. openstacksdk: create_image(use_import=True), and stage_image + import_image ----------


@pytest.fixture
def user_sdk(live_service):
    with openstack.connection.Connection(
        auth_type="admin_token",
        auth={"endpoint": live_service.url, "token": live_service.user.token},
        image_endpoint_override=live_service.url,
    ) as connection:
        yield connection


def sdk_wait_active(sdk, image_id: str):
    image = sdk.image.get_image(image_id)
    return sdk.image.wait_for_status(
        image, "active", failures=["killed"], interval=0.1, wait=IMPORT_SECONDS
    )


@pytest.mark.filterwarnings(
    # create_image(filename=...) opens the file itself and never closes it.
    "ignore:unclosed file:ResourceWarning"
)
def test_openstacksdk_create_image_use_import(
    live_service, live_worker, user_sdk, tmp_path, unique
):
    payload = make_payload(tmp_path, 2 * MiB + 99)
    mark = live_service.access_log_mark()

    # The SDK refuses unless the create response lists glance-direct in
    # OpenStack-image-import-methods; it then stages (Content-Length) and imports.
    image = user_sdk.image.create_image(
        name=f"import-sdk-{unique}",
        filename=str(payload.path),
        disk_format="raw",
        container_format="bare",
        use_import=True,
    )

    active = sdk_wait_active(user_sdk, image.id)
    assert (active.status, active.size, active.checksum) == (
        "active",
        len(payload.data),
        payload.md5,
    )
    assert (active.hash_algo, active.hash_value) == ("sha512", payload.sha512)
    image_record = assert_imported(live_service, image.id, payload)
    # The SDK's own properties, sent on create, survive the import.
    assert image_record["owner_specified.openstack.object"] == f"images/import-sdk-{unique}"
    assert import_requests(live_service, mark, image.id) == [
        ("PUT", "/stage", 204),
        ("POST", "/import", 202),
    ]
    assert_one_successful_task(live_service, image.id, "glance-direct", payload)


def test_openstacksdk_stage_image_then_import_image(
    live_service, live_worker, user_sdk, tmp_path, unique
):
    payload = make_payload(tmp_path, MiB + 5)
    image = user_sdk.image.create_image(
        name=f"import-sdk-explicit-{unique}", disk_format="raw", container_format="bare"
    )
    assert image.status == "queued"

    user_sdk.image.stage_image(image, data=payload.data)
    staged = user_sdk.image.get_image(image.id)
    # Staging neither hashes nor inspects: the size only, as Glance.
    assert (staged.status, staged.size, staged.checksum) == ("uploading", len(payload.data), None)
    assert staged_entries(live_service, image.id) == [image.id]
    user_sdk.image.import_image(staged, method="glance-direct")

    active = sdk_wait_active(user_sdk, image.id)
    assert (active.size, active.checksum, active.hash_value) == (
        len(payload.data),
        payload.md5,
        payload.sha512,
    )
    assert_imported(live_service, image.id, payload)
    assert_one_successful_task(live_service, image.id, "glance-direct", payload)


# --- 4. python-glanceclient: images.stage + images.image_import ------------------------------


def test_glanceclient_stage_and_import_then_tasks(live_service, live_worker, tmp_path, unique):
    client = glanceclient.Client("2", endpoint=live_service.url, token=live_service.user.token)
    payload = make_payload(tmp_path, 4 * MiB + 1)
    image_id = client.images.create(
        name=f"import-gc-{unique}", disk_format="raw", container_format="bare"
    )["id"]

    with payload.path.open("rb") as data:  # chunked, as glanceclient always uploads
        client.images.stage(image_id, data)
    assert (client.images.get(image_id)["status"], staged_entries(live_service, image_id)) == (
        "uploading",
        [image_id],
    )
    client.images.image_import(image_id, method="glance-direct")

    image = wait_for(
        lambda: (found := client.images.get(image_id))["status"] == "active" and found,
        "active",
    )
    assert (image["size"], image["checksum"], image["os_hash_value"]) == (
        len(payload.data),
        payload.md5,
        payload.sha512,
    )
    assert_imported(live_service, image_id, payload)
    assert b"".join(client.images.data(image_id)) == payload.data  # verified against the hash
    task = assert_one_successful_task(live_service, image_id, "glance-direct", payload)
    # The same through glanceclient's own call (it needs v2.12 in /versions).
    (listed,) = client.images.get_associated_image_tasks(image_id)["tasks"]
    assert (listed["id"], listed["status"], listed["progress"]["percent"]) == (
        task["id"],
        "success",
        100,
    )


# --- the operator's plugin chain, snapshotted by the API node, run by the worker -------------


@pytest.fixture(scope="module")
def injecting_service(extra_live_service):
    return extra_live_service(
        IMAGE_IMPORT_PLUGINS="inject_image_metadata",
        INJECT_METADATA_PROPERTIES="imported_by:live-tests,tier:gold",
    )


def test_web_download_runs_the_plugin_chain_of_the_accepting_api_node(
    injecting_service, live_worker, import_source, tmp_path, unique
):
    payload = make_payload(tmp_path, MiB + 3)
    uri = import_source.add(f"/inject-{unique}.raw", payload.data)
    image_id = create_raw_image(injecting_service, f"import-inject-{unique}")

    status, body = call(
        injecting_service,
        "POST",
        f"/v2/images/{image_id}/import",
        {"method": {"name": "web-download", "uri": uri}},
    )

    assert (status, body) == (202, b"")
    wait_until_active(injecting_service, image_id)
    image = assert_imported(injecting_service, image_id, payload)
    assert (image["imported_by"], image["tier"]) == ("live-tests", "gold")


# --- 5. the worker killed mid-import; recover_imports; the import retried --------------------


def test_import_killed_mid_download_is_recovered_and_retried(
    live_service, live_worker, import_source, tmp_path, unique
):
    payload = make_payload(tmp_path, 3 * MiB + 17)
    path = f"/stall-{unique}.raw"
    uri = import_source.add(path, payload.data, stall_first=True)
    image_id = create_raw_image(live_service, f"import-killed-{unique}")
    request = {"method": {"name": "web-download", "uri": uri}}

    assert call(live_service, "POST", f"/v2/images/{image_id}/import", request) == (202, b"")

    # The worker has the first bytes in a partial staging file and waits for the rest.
    (task,) = wait_for(
        lambda: (
            (tasks := image_tasks(live_service, image_id))[0]["status"] == "processing" and tasks
        ),
        "processing",
    )
    (partial,) = wait_for(
        lambda: list(live_service.staging_dir.glob(f".{image_id}.*.partial")), "a partial file"
    )
    wait_for(lambda: partial.stat().st_size >= MiB, "partly staged")
    assert len(import_source.files[path].requests) == 1
    image = show(live_service, image_id)
    assert (image["status"], image["os_glance_import_task"]) == ("importing", task["id"])

    live_worker.kill()
    try:
        # Nothing moves on by itself, and the import cannot be repeated yet.
        status, body = call(live_service, "POST", f"/v2/images/{image_id}/import", request)
        assert status == 409, body
        assert show(live_service, image_id)["status"] == "importing"

        time.sleep(1.1)  # the task's heartbeat is now older than IMPORT_STALE_SECONDS=1
        output = subprocess.run(
            [sys.executable, "manage.py", "recover_imports"],
            cwd=Path(__file__).resolve().parents[2],
            env={**live_service.env, "IMPORT_STALE_SECONDS": "1"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert output.returncode == 0, output.stderr
        assert f"Failed stale task {task['id']} of image {image_id} " in output.stdout
    finally:
        live_worker.start()

    (old,) = image_tasks(live_service, image_id)
    assert (old["id"], old["status"], old["result"]) == (task["id"], "failure", None)
    assert re.fullmatch(
        r"The worker running this import stopped \(no heartbeat for \d+ s\); "
        r"the import can be retried\.",
        old["message"],
    ), old["message"]
    recovered = show(live_service, image_id)
    assert recovered["status"] == "queued"
    assert recovered["size"] is None and recovered["checksum"] is None
    assert "os_glance_import_task" not in recovered
    assert staged_entries(live_service, image_id) == []

    # The very same request again: this time the source answers in full.
    assert call(live_service, "POST", f"/v2/images/{image_id}/import", request) == (202, b"")
    wait_until_active(live_service, image_id)
    assert_imported(live_service, image_id, payload)
    tasks = {t["id"]: t for t in image_tasks(live_service, image_id)}
    assert tasks.pop(task["id"])["status"] == "failure"
    (retry,) = tasks.values()
    assert (retry["status"], retry["result"]) == ("success", {"image_id": image_id})
    assert len(import_source.files[path].requests) == 2
