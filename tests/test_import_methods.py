"""web-download, copy-image and the plugin chain through the import API (jobs inline)."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import json
import subprocess
import threading

import pytest

from images.models import Image
from tasks.models import Task
from tests.support import JSON, error_message, reloaded

DATA = b"downloadable image " * 8192


@pytest.fixture
def web_server():
    """A real HTTP server on loopback serving DATA at /image and 404 elsewhere."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path != "/image":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(DATA)))
            self.end_headers()
            self.wfile.write(DATA)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def allow_loopback(settings, web_server):
    settings.IMPORT_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.IMPORT_ALLOWED_PORTS = ["80", "443", web_server.rsplit(":", 1)[1]]


def start_import(persona, image, body, **extra):
    return persona.client().post(
        f"/v2/images/{image.id}/import",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_ACCEPT=JSON,
        **extra,
    )


def web_download(uri):
    return {"method": {"name": "web-download", "uri": uri}}


@pytest.fixture
def queued(make_image):
    return make_image(disk_format="raw", container_format="bare")


def test_web_download_from_allowed_host_activates(
    owner, queued, web_server, allow_loopback, data_dir
):
    response = start_import(owner, queued, web_download(f"{web_server}/image"))

    assert response.status_code == 202
    image = reloaded(queued)
    assert Task.objects.get(image_id=image.id).status == "success"
    assert (image.status, image.size) == ("active", len(DATA))
    assert image.checksum == hashlib.md5(DATA).hexdigest()
    assert image.os_hash_value == hashlib.sha512(DATA).hexdigest()
    assert (data_dir / "images" / image.id).read_bytes() == DATA
    assert list((data_dir / "staging").glob(f"*{image.id}*")) == []


def test_web_download_of_loopback_is_refused_by_default(owner, queued, web_server, settings):
    settings.IMPORT_ALLOWED_PORTS = ["80", "443", web_server.rsplit(":", 1)[1]]

    response = start_import(owner, queued, web_download(f"{web_server}/image"))

    assert response.status_code == 400
    assert error_message(response).startswith("URI for web-download does not pass filtering")
    assert "loopback" in error_message(response)
    assert reloaded(queued).status == "queued"
    assert not Task.objects.exists()


def test_web_download_on_a_disallowed_port_is_refused(owner, queued, settings):
    settings.IMPORT_ALLOWED_HOSTS = ["127.0.0.1"]

    response = start_import(owner, queued, web_download("http://127.0.0.1:8080/x"))

    assert response.status_code == 400
    assert "port 8080" in error_message(response)


def test_failed_web_download_returns_to_queued_with_a_message(
    owner, queued, web_server, allow_loopback
):
    response = start_import(owner, queued, web_download(f"{web_server}/missing"))

    assert response.status_code == 202
    image = reloaded(queued)
    assert (image.status, image.size) == ("queued", None)
    task = Task.objects.get(image_id=image.id)
    assert task.status == "failure"
    assert task.message.startswith(f"Downloading {web_server}/missing failed")
    assert "os_glance_import_task" not in image.property_dict()


def test_inject_metadata_for_a_member_but_not_for_an_admin(
    owner, admin, make_image, web_server, allow_loopback, settings
):
    settings.IMAGE_IMPORT_PLUGINS = ["inject_image_metadata"]
    settings.INJECT_METADATA_PROPERTIES = "ingested_by:operator,tier:gold"
    mine = make_image(disk_format="raw", container_format="bare")
    theirs = make_image(disk_format="raw", container_format="bare", owner=admin.project_id)

    start_import(owner, mine, web_download(f"{web_server}/image"))
    start_import(admin, theirs, web_download(f"{web_server}/image"))

    assert reloaded(mine).property_dict()["ingested_by"] == "operator"
    assert reloaded(mine).property_dict()["tier"] == "gold"
    assert "ingested_by" not in reloaded(theirs).property_dict()
    assert reloaded(theirs).status == "active"


def test_decompression_plugin_stores_the_decompressed_bytes(owner, queued, settings, data_dir):
    settings.IMAGE_IMPORT_PLUGINS = ["image_decompression"]
    packed = gzip.compress(DATA)
    owner.client().put(
        f"/v2/images/{queued.id}/stage", data=packed, content_type="application/octet-stream"
    )

    start_import(owner, queued, {"method": {"name": "glance-direct"}})

    image = reloaded(queued)
    assert (image.status, image.size) == ("active", len(DATA))
    assert image.checksum == hashlib.md5(DATA).hexdigest()
    assert (data_dir / "images" / image.id).read_bytes() == DATA


def test_failing_plugin_keeps_staged_data_and_a_retry_succeeds(owner, queued, settings, data_dir):
    settings.IMAGE_IMPORT_PLUGINS = ["no_such_plugin"]
    owner.client().put(
        f"/v2/images/{queued.id}/stage", data=DATA, content_type="application/octet-stream"
    )

    start_import(owner, queued, {"method": {"name": "glance-direct"}})

    task = Task.objects.get(image_id=queued.id)
    assert task.status == "failure" and "Unknown import plugin: no_such_plugin" in task.message
    assert task.message.endswith("Retrying will fail again until the cause above is fixed.")
    assert reloaded(queued).status == "uploading"
    assert (data_dir / "staging" / queued.id).read_bytes() == DATA

    settings.IMAGE_IMPORT_PLUGINS = ["no_op"]
    retried = start_import(owner, queued, {"method": {"name": "glance-direct"}})

    assert retried.status_code == 202
    assert reloaded(queued).status == "active"
    assert (data_dir / "images" / queued.id).read_bytes() == DATA


@pytest.fixture
def two_stores(settings, tmp_path):
    settings.ENABLED_BACKENDS = {"fast": str(tmp_path / "fast"), "cheap": str(tmp_path / "cheap")}
    settings.DEFAULT_BACKEND = "fast"
    return tmp_path


def test_copy_image_to_a_second_store(admin, make_image, two_stores):
    image = make_image(disk_format="raw", container_format="bare")
    admin.client().put(
        f"/v2/images/{image.id}/file", data=DATA, content_type="application/octet-stream"
    )

    response = start_import(admin, image, {"method": {"name": "copy-image"}, "stores": ["cheap"]})

    assert response.status_code == 202
    assert (two_stores / "cheap" / image.id).read_bytes() == DATA
    shown = admin.client().get(f"/v2/images/{image.id}").json()
    assert sorted(shown["stores"].split(",")) == ["cheap", "fast"]
    assert shown["os_glance_importing_to_stores"] == ""
    assert Task.objects.get(image_id=image.id).status == "success"


def test_copy_image_to_a_store_already_holding_it_is_400(admin, make_image, two_stores):
    image = make_image(disk_format="raw", container_format="bare")
    admin.client().put(
        f"/v2/images/{image.id}/file", data=DATA, content_type="application/octet-stream"
    )

    response = start_import(admin, image, {"method": {"name": "copy-image"}, "stores": ["fast"]})

    assert response.status_code == 400
    assert error_message(response) == "Image is already present at store 'fast'"


def test_import_to_unknown_store_is_409(owner, queued, two_stores):
    owner.client().put(
        f"/v2/images/{queued.id}/stage", data=DATA, content_type="application/octet-stream"
    )

    response = start_import(
        owner, queued, {"method": {"name": "glance-direct"}, "stores": ["nope"]}
    )

    assert response.status_code == 409
    assert reloaded(queued).status == "uploading"


def test_legacy_import_task_creates_and_fills_a_new_image(admin, web_server, allow_loopback):
    body = {
        "type": "import",
        "input": {
            "import_from": f"{web_server}/image",
            "import_from_format": "raw",
            "image_properties": {"name": "legacy", "os_distro": "cirros"},
        },
    }

    response = admin.client().post(
        "/v2/tasks", data=json.dumps(body), content_type="application/json"
    )

    assert response.status_code == 201
    created = response.json()
    assert response["Location"] == f"http://testserver/v2/tasks/{created['id']}"
    assert created["input"] == body["input"]
    task = Task.objects.get(pk=created["id"])
    image = reloaded_image(task.image_id)
    assert (task.status, task.result) == ("success", {"image_id": image.id})
    assert (image.name, image.status, image.size) == ("legacy", "active", len(DATA))
    assert image.property_dict()["os_distro"] == "cirros"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"input": {}}, "Task 'type' is required"),
        (
            {"type": "import", "input": {"import_from": "file:///etc/passwd"}},
            "URI for import_from must be an http or https URL.",
        ),
        (
            {"type": "import", "input": {}, "extra": 1},
            "Provided object does not match schema 'task': Additional properties are not allowed (extra were unexpected)",
        ),
    ],
)
def test_legacy_import_task_refusals(admin, body, message):
    response = admin.client().post(
        "/v2/tasks", data=json.dumps(body), content_type="application/json", HTTP_ACCEPT=JSON
    )

    assert response.status_code == 400
    assert error_message(response) == message
    assert not Task.objects.exists()


def test_legacy_import_task_is_admin_only(owner):
    response = owner.client().post("/v2/tasks", data="{}", content_type="application/json")

    assert response.status_code == 403


def reloaded_image(image_id: str):
    return Image.objects.get(pk=image_id)


def stage_empty_qcow2(persona, make_image, tmp_path, qemu_img: str) -> tuple[Image, bytes]:
    """A qcow2 image staged by ``persona``, with the qcow2 bytes qemu-img made."""
    source = tmp_path / "disk.qcow2"
    subprocess.run([qemu_img, "create", "-q", "-f", "qcow2", str(source), "4M"], check=True)
    image = make_image(disk_format="qcow2", container_format="bare")
    persona.client().put(
        f"/v2/images/{image.id}/stage",
        data=source.read_bytes(),
        content_type="application/octet-stream",
    )
    return image, source.read_bytes()


def test_conversion_plugin_turns_a_qcow2_into_raw(
    owner, make_image, settings, tmp_path, data_dir, qemu_img
):
    settings.IMAGE_IMPORT_PLUGINS = ["image_conversion"]
    settings.IMAGE_CONVERSION_OUTPUT_FORMAT = "raw"
    image, _ = stage_empty_qcow2(owner, make_image, tmp_path, qemu_img)

    start_import(owner, image, {"method": {"name": "glance-direct"}})

    image = reloaded(image)
    stored = (data_dir / "images" / image.id).read_bytes()
    assert (image.status, image.disk_format) == ("active", "raw")
    assert image.size == image.virtual_size == 4 * 1024 * 1024 == len(stored)
    assert image.checksum == hashlib.md5(stored).hexdigest()


def test_temporary_plugin_failure_keeps_staged_data_and_says_a_retry_may_succeed(
    owner, make_image, settings, tmp_path, data_dir, qemu_img
):
    settings.IMAGE_IMPORT_PLUGINS = ["image_conversion"]
    settings.IMAGE_CONVERSION_TIMEOUT = 0.000001  # qemu-img cannot finish in time
    image, staged = stage_empty_qcow2(owner, make_image, tmp_path, qemu_img)

    start_import(owner, image, {"method": {"name": "glance-direct"}})

    task = Task.objects.get(image_id=image.id)
    assert "did not finish within" in task.message
    assert task.message.endswith("This may be temporary: retrying the import may succeed.")
    assert reloaded(image).status == "uploading"
    assert (data_dir / "staging" / image.id).read_bytes() == staged


def test_conversion_plugin_without_qemu_img_fails_the_import_and_a_retry_succeeds(
    owner, make_image, settings, tmp_path, data_dir, qemu_img, without_qemu_img, monkeypatch
):
    settings.IMAGE_IMPORT_PLUGINS = ["image_conversion"]
    image, staged = stage_empty_qcow2(owner, make_image, tmp_path, qemu_img)

    failed = start_import(owner, image, {"method": {"name": "glance-direct"}})

    assert failed.status_code == 202
    task = Task.objects.get(image_id=image.id)
    assert (task.status, task.message) == (
        "failure",
        "Import plugin image_conversion failed: The image_conversion import plugin needs "
        "qemu-img, which is not installed on this worker (Debian/Ubuntu package qemu-utils) "
        "Retrying will fail again until the cause above is fixed.",
    )
    assert reloaded(image).status == "uploading"
    assert (data_dir / "staging" / image.id).read_bytes() == staged
    assert not (data_dir / "images" / image.id).exists()

    monkeypatch.undo()  # qemu-img is on PATH again
    retried = start_import(owner, image, {"method": {"name": "glance-direct"}})

    assert retried.status_code == 202
    assert (reloaded(image).status, reloaded(image).disk_format) == ("active", "raw")
