"""Slow web-download sources against a real gunicorn and a real ``manage.py qcluster`` with two
workers: a source sending a byte a second fails its import at the deadline, a project's second
download is refused while its first runs, and a glance-direct import finishes at once while
every web-download slot is taken (docs/security.md, "web-download limits").

This module runs its own API server and job worker on the live database, with a job queue of
their own, so the session's worker never takes these jobs.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.live.conftest import LiveWorker, write_live_settings

DATA = b"fetched at full speed " * 4096
# Long enough for the steps below to finish before it on a loaded machine.
DEADLINE = 25
WAIT_SECONDS = 30
OCTET = "application/octet-stream"


class SlowSource(ThreadingHTTPServer):
    """``/trickle`` announces ``DATA`` and sends a byte a second; ``/fast`` sends it at once."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), SlowHandler)
        self.stop = threading.Event()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class SlowHandler(BaseHTTPRequestHandler):
    server: SlowSource
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(DATA)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.path == "/fast":
            self.wfile.write(DATA)
            return
        for byte in DATA:
            if self.server.stop.wait(1):
                return
            try:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
            except OSError:
                return

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def source() -> Iterator[SlowSource]:
    server = SlowSource()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stop.set()
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="module")
def limited(live_service, extra_live_service, source, tmp_path_factory):
    """An API server and a two-worker job cluster with short web-download limits."""
    settings_dir = tmp_path_factory.mktemp("limits") / "settings"
    overrides = {
        "DJANGO_SETTINGS_MODULE": write_live_settings(settings_dir),
        "PYTHONPATH": str(settings_dir),
        "IMPORT_ALLOWED_PORTS": f"80,443,{source.server_address[1]}",
        "Q_WORKERS": "2",
        "WEB_DOWNLOAD_WORKERS": "1",
        "WEB_DOWNLOAD_DEADLINE": str(DEADLINE),
        "WEB_DOWNLOAD_MIN_RATE": "0",
        "WEB_DOWNLOAD_PROJECT_LIMIT": "1",
    }
    service = extra_live_service(**overrides)
    worker = LiveWorker(service.env, tmp_path_factory.mktemp("limits-worker") / "qcluster.log")
    worker.start()
    try:
        yield service
    finally:
        worker.stop()


def call(service, token: str, method: str, path: str, body=None, content_type=None):
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{service.url}{path}",
        method=method,
        data=data,
        headers={
            "X-Auth-Token": token,
            "Accept": "application/json",
            "Content-Type": content_type or "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read() or b"{}")


def new_image(service, token: str) -> str:
    body = {"name": "limits", "disk_format": "raw", "container_format": "bare"}
    status, image = call(service, token, "POST", "/v2/images", body)
    assert status == 201, image
    return image["id"]


def web_download(service, token: str, image_id: str, uri: str):
    body = {"method": {"name": "web-download", "uri": uri}}
    return call(service, token, "POST", f"/v2/images/{image_id}/import", body)


def image_status(service, token: str, image_id: str) -> str:
    return call(service, token, "GET", f"/v2/images/{image_id}")[1]["status"]


def only_task(service, token: str, image_id: str) -> dict:
    (task,) = call(service, token, "GET", f"/v2/images/{image_id}/tasks")[1]["tasks"]
    return task


def wait_for(condition, what: str, seconds: float = WAIT_SECONDS):
    deadline = time.monotonic() + seconds
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} within {seconds}s")
        time.sleep(0.1)
    return result


def test_slow_downloads_neither_starve_imports_nor_outlive_the_deadline(limited, source):
    user, other = limited.user.token, limited.other.token
    slow, waiting = new_image(limited, user), new_image(limited, other)
    trickle = source.url("/trickle")

    # The user's download takes the only web-download slot; the other project's waits.
    started = time.monotonic()
    assert web_download(limited, user, slow, trickle)[0] == 202
    wait_for(lambda: only_task(limited, user, slow)["status"] == "processing", "slow running")
    assert web_download(limited, other, waiting, source.url("/fast"))[0] == 202
    wait_for(
        lambda: (
            only_task(limited, other, waiting)["message"] == "Waiting for a free web-download slot."
        ),
        "second download waiting",
    )

    # A second download of the same project is refused while its first runs.
    refused_image = new_image(limited, user)
    status, body = web_download(limited, user, refused_image, source.url("/fast"))
    assert status == 413
    assert body["code"] == "413 Request Entity Too Large"
    assert "over its limit of 1 concurrent web-download imports" in body["message"]
    assert image_status(limited, user, refused_image) == "queued"

    # glance-direct does not wait behind the slow download: the second worker is free.
    direct = new_image(limited, user)
    staged = call(limited, user, "PUT", f"/v2/images/{direct}/stage", DATA, OCTET)
    assert staged[0] == 204
    imported = call(
        limited, user, "POST", f"/v2/images/{direct}/import", {"method": {"name": "glance-direct"}}
    )
    assert imported[0] == 202
    wait_for(lambda: image_status(limited, user, direct) == "active", "glance-direct active", 20)
    # Active while the slow download still holds its worker: it did not wait for that one.
    assert only_task(limited, user, slow)["status"] == "processing"
    assert only_task(limited, other, waiting)["status"] == "pending"

    # The trickling source fails its import at the deadline; the image can be imported again.
    failed = wait_for(
        lambda: (task := only_task(limited, user, slow))["status"] == "failure" and task,
        "slow download failed",
    )
    elapsed = time.monotonic() - started
    assert failed["message"] == (
        f"Downloading {trickle} failed: Fetching {trickle} took longer than the {DEADLINE} "
        "seconds allowed for a web-download"
    )
    assert DEADLINE <= elapsed < DEADLINE + 10
    assert image_status(limited, user, slow) == "queued"

    # The freed slot goes to the waiting download.
    wait_for(lambda: image_status(limited, other, waiting) == "active", "waiting one active")
    shown = call(limited, other, "GET", f"/v2/images/{waiting}")[1]
    assert (shown["size"], shown["checksum"]) == (len(DATA), hashlib.md5(DATA).hexdigest())
