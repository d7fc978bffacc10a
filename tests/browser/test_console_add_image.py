"""The console's "Add image" page in a real browser: metadata and a 50 MiB file sent through
the Image API (POST /v2/images, PUT /stage with a progress bar, glance-direct) ending active
with the right size and hashes; a web-download from a local server; a refusal in the API's
words."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from images.models import Image
from imageservice.audit.models import AuditEvent
from imageservice.identity.models import ApiToken
from imageservice.identity.services import CONSOLE_TOKEN_DESCRIPTION
from tasks.models import Task

MIB = 1024 * 1024
FIFTY_MIB = 50 * MIB
SOURCE_DATA = bytes(range(256)) * (3 * 4096) + b"web-download tail"  # 3 MiB and a bit
DONE_TIMEOUT_MS = 180_000


@pytest.fixture
def fifty_mib_file(tmp_path):
    path = tmp_path / "disk.raw"
    block = hashlib.sha512(b"imageservice").digest() * (MIB // 64)
    with path.open("wb") as handle:
        for _ in range(FIFTY_MIB // MIB):
            handle.write(block)
    return path


class SourceHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(SOURCE_DATA)))
        self.end_headers()
        self.wfile.write(SOURCE_DATA)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def source_url(settings) -> Iterator[str]:
    """A web-download source on loopback that the operator settings let through."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), SourceHandler)
    port = server.server_address[1]
    settings.IMPORT_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.IMPORT_ALLOWED_PORTS = [str(port)]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}/images/source.raw"
    server.shutdown()
    server.server_close()


# Records every value the progress bar takes (its value attribute reflects the property).
WATCH_PROGRESS = """() => {
  window.progressShown = [];
  const bar = document.getElementById("add-image-progress");
  new MutationObserver(() => window.progressShown.push(Number(bar.value)))
    .observe(bar, { attributes: true, attributeFilter: ["value"] });
}"""


def fill_metadata(page, name: str) -> None:
    page.goto("/admin/images/image/")
    page.click("a.addlink")
    page.wait_for_load_state()
    page.fill("#id_name", name)
    page.select_option("#id_disk_format", "raw")
    page.select_option("#id_container_format", "bare")
    page.select_option("#id_visibility", "private")
    page.fill("#id_min_disk", "2")
    page.fill("#id_min_ram", "512")
    page.fill("#id_tags", "browser, upload")
    page.fill("#id_properties", "os_distro=debian\nos_version=12")


def wait_until_done(page) -> None:
    page.wait_for_function(
        "() => /^(Done|Stopped)/.test(document.getElementById('add-image-step').textContent)",
        timeout=DONE_TIMEOUT_MS,
    )


def test_add_image_uploads_a_50_mib_file_through_stage_and_glance_direct(
    console, admin, fifty_mib_file, tmp_path
):
    data = fifty_mib_file.read_bytes()
    fill_metadata(console, "uploaded from the browser")
    console.check("input[name=source][value=glance-direct]")
    console.set_input_files("#id_file", fifty_mib_file)
    console.evaluate(WATCH_PROGRESS)

    console.click("#add-image-submit")
    wait_until_done(console)
    console.screenshot(path=tmp_path / "add-image.png", full_page=True)

    # The bar moved while the bytes went: some value strictly between 0 and 100 was shown.
    shown = console.evaluate("window.progressShown")
    assert any(0 < value < 100 for value in shown), shown

    assert console.inner_text("#add-image-step") == "Done: the image is active."
    assert console.inner_text("#add-image-error") == ""
    assert console.get_attribute("#add-image-progress", "value") == "100"
    image = Image.objects.get(name="uploaded from the browser")
    assert image.status == "active"
    assert image.size == FIFTY_MIB
    assert image.checksum == hashlib.md5(data).hexdigest()
    assert image.os_hash_value == hashlib.sha512(data).hexdigest()
    assert (image.disk_format, image.container_format, image.visibility) == (
        "raw",
        "bare",
        "private",
    )
    assert (image.min_disk, image.min_ram, image.owner) == (2, 512, admin.project_id)
    assert sorted(image.tag_list()) == ["browser", "upload"]
    custom = {k: v for k, v in image.property_dict().items() if not k.startswith("os_glance")}
    assert custom == {"os_distro": "debian", "os_version": "12"}
    assert console.inner_text("#add-image-checksum") == image.checksum
    assert console.inner_text("#add-image-status") == "active"
    task = Task.objects.get(image_id=image.id)
    assert task.status == "success"
    assert task.input["import_req"]["method"]["name"] == "glance-direct"
    assert console.inner_text("#add-image-task-status") == "success"
    # Written through the API as the operator: the audit trail says who.
    actions = set(AuditEvent.objects.filter(image_id=image.id).values_list("action", flat=True))
    assert {"image.create", "image.stage", "image.upload"} <= actions, actions
    assert set(
        AuditEvent.objects.filter(image_id=image.id, action="image.create").values_list(
            "user_id", flat=True
        )
    ) == {admin.user.keystone_id}

    console.click("#add-image-link")
    console.wait_for_load_state()
    assert f"/admin/images/image/{image.id}/change/" in console.url


def test_add_image_imports_from_a_url_with_web_download(console, source_url, tmp_path):
    fill_metadata(console, "downloaded")
    console.check("input[name=source][value=web-download]")
    console.fill("#id_uri", source_url)

    console.click("#add-image-submit")
    wait_until_done(console)
    console.screenshot(path=tmp_path / "add-image-web.png", full_page=True)

    assert console.inner_text("#add-image-step") == "Done: the image is active."
    image = Image.objects.get(name="downloaded")
    assert image.status == "active"
    assert image.size == len(SOURCE_DATA)
    assert image.checksum == hashlib.md5(SOURCE_DATA).hexdigest()
    assert image.os_hash_value == hashlib.sha512(SOURCE_DATA).hexdigest()
    task = Task.objects.get(image_id=image.id)
    assert task.input["import_req"]["method"] == {"name": "web-download", "uri": source_url}
    assert console.inner_text("#add-image-task-status") == "success"


def test_add_image_page_reuses_its_token_for_a_second_image(console, source_url):
    fill_metadata(console, "first")
    console.check("input[name=source][value=web-download]")
    console.fill("#id_uri", source_url)
    console.click("#add-image-submit")
    wait_until_done(console)
    console.fill("#id_name", "second")
    console.click("#add-image-submit")
    console.wait_for_function(
        "() => document.getElementById('add-image-link').textContent.startsWith('second')"
    )
    wait_until_done(console)

    assert console.inner_text("#add-image-step") == "Done: the image is active."
    assert set(Image.objects.values_list("name", "status")) == {
        ("first", "active"),
        ("second", "active"),
    }
    assert ApiToken.objects.filter(description=CONSOLE_TOKEN_DESCRIPTION).count() == 1


def test_add_image_shows_the_api_refusal_and_creates_nothing(console):
    fill_metadata(console, "refused")
    console.fill("#id_properties", "os_glance_forged=1")
    console.check("input[name=source][value=web-download]")
    console.fill("#id_uri", "http://127.0.0.1:9/never")

    console.click("#add-image-submit")
    wait_until_done(console)

    assert console.inner_text("#add-image-step") == "Stopped."
    assert console.inner_text("#add-image-error").startswith("403: ")
    assert "os_glance_forged" in console.inner_text("#add-image-error")
    assert not Image.objects.filter(name="refused").exists()
