"""web-download cannot hold the job workers: the fetch deadline and minimum rate, the project
limit at ``POST /import`` and the cap on downloads running at once (docs/security.md).

The sources are real HTTP servers on loopback that send their bytes as slowly as told; the jobs
run inline (IMPORT_JOBS_SYNC), so ``POST /import`` returns once the import ended.
``tests/live/test_web_download_limits_live.py`` runs the same limits with a real job worker.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from images.models import Image
from tasks.download_slots import WAITING
from tasks.models import Task
from tests.support import JSON, error_message, reloaded

DATA = b"web-download bytes " * 64


class TrickleServer(ThreadingHTTPServer):
    """Serves ``DATA`` at ``/fast``; ``/trickle`` announces it and sends one byte a second;
    ``/slow-headers`` sends its status line and then a header byte a second."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), TrickleHandler)
        self.stop = threading.Event()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class TrickleHandler(BaseHTTPRequestHandler):
    server: TrickleServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path == "/slow-headers":
            self.wfile.write(b"HTTP/1.1 200 OK\r\n")
            self._trickle(b"X-Slow: " + b"z" * 1000)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(DATA)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.path == "/fast":
            self.wfile.write(DATA)
        else:
            self._trickle(DATA)

    def _trickle(self, data: bytes) -> None:
        for byte in data:
            if self.server.stop.wait(1):
                return
            try:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
            except OSError:
                return  # the fetcher gave up

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def source(settings) -> Iterator[TrickleServer]:
    server = TrickleServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.IMPORT_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.IMPORT_ALLOWED_PORTS = [str(server.server_address[1])]
    try:
        yield server
    finally:
        server.stop.set()
        server.shutdown()
        server.server_close()
        thread.join()


def start_import(persona, image, uri: str):
    return persona.client().post(
        f"/v2/images/{image.id}/import",
        data=json.dumps({"method": {"name": "web-download", "uri": uri}}),
        content_type="application/json",
        HTTP_ACCEPT=JSON,
    )


@pytest.fixture
def queued(make_image):
    return make_image(disk_format="raw", container_format="bare")


def assert_back_to_queued(image, data_dir):
    row = reloaded(image)
    assert (row.status, row.size, row.checksum) == ("queued", None, None)
    assert list((data_dir / "staging").glob(f"*{image.id}*")) == []


# --- the fetch: deadline and minimum rate --------------------------------------------------


def test_source_sending_a_byte_a_second_fails_at_the_deadline(
    owner, queued, source, settings, data_dir
):
    settings.WEB_DOWNLOAD_DEADLINE = 3
    settings.WEB_DOWNLOAD_MIN_RATE = 0
    uri = source.url("/trickle")
    started = time.monotonic()

    response = start_import(owner, queued, uri)

    elapsed = time.monotonic() - started
    assert response.status_code == 202
    task = Task.objects.get(image_id=queued.id)
    assert (task.status, task.message) == (
        "failure",
        f"Downloading {uri} failed: Fetching {uri} took longer than the 3 seconds allowed for a "
        "web-download",
    )
    assert 3 <= elapsed < 8
    assert_back_to_queued(queued, data_dir)


def test_source_below_the_minimum_rate_fails_after_one_window(
    owner, queued, source, settings, data_dir
):
    settings.WEB_DOWNLOAD_MIN_RATE = 1024
    settings.WEB_DOWNLOAD_RATE_WINDOW = 2
    uri = source.url("/trickle")
    started = time.monotonic()

    start_import(owner, queued, uri)

    elapsed = time.monotonic() - started
    task = Task.objects.get(image_id=queued.id)
    assert task.status == "failure"
    assert task.message.startswith(f"Downloading {uri} failed: Fetching {uri} was too slow: ")
    assert task.message.endswith("below the minimum of 1024 bytes per second for a web-download")
    assert 2 <= elapsed < 8
    assert_back_to_queued(queued, data_dir)


def test_headers_sent_a_byte_a_second_fail_at_the_deadline(
    owner, queued, source, settings, data_dir
):
    # No read of ours returns while http.client parses headers: the deadline's timer ends it.
    settings.WEB_DOWNLOAD_DEADLINE = 2
    uri = source.url("/slow-headers")
    started = time.monotonic()

    start_import(owner, queued, uri)

    elapsed = time.monotonic() - started
    task = Task.objects.get(image_id=queued.id)
    assert (task.status, task.message) == (
        "failure",
        f"Downloading {uri} failed: Fetching {uri} took longer than the 2 seconds allowed for a "
        "web-download",
    )
    assert elapsed < 7
    assert_back_to_queued(queued, data_dir)


def test_a_fast_source_is_untouched_by_the_limits(owner, queued, source, settings):
    settings.WEB_DOWNLOAD_DEADLINE = 5
    settings.WEB_DOWNLOAD_MIN_RATE = 1024
    settings.WEB_DOWNLOAD_RATE_WINDOW = 1

    start_import(owner, queued, source.url("/fast"))

    assert (reloaded(queued).status, reloaded(queued).size) == ("active", len(DATA))


# --- the project limit at POST /import ------------------------------------------------------


def test_web_download_over_the_project_limit_is_413(owner, outsider, make_image, source, settings):
    settings.WEB_DOWNLOAD_PROJECT_LIMIT = 1
    settings.IMPORT_JOBS_SYNC = False  # accepted imports wait in the queue: no worker runs
    first, second = (
        make_image(disk_format="raw", container_format="bare"),
        make_image(disk_format="raw", container_format="bare"),
    )
    theirs = make_image(owner=outsider.project_id, disk_format="raw", container_format="bare")
    uri = source.url("/fast")

    accepted = start_import(owner, first, uri)
    refused = start_import(owner, second, uri)
    other_project = start_import(outsider, theirs, uri)

    assert accepted.status_code == 202
    assert refused.status_code == 413
    assert refused.json()["code"] == "413 Request Entity Too Large"
    assert error_message(refused) == (
        "The request returned a 413 Request Entity Too Large. This generally means that rate "
        "limiting or a quota threshold was breached.\n\nThe response body:\n"
        f"Project {owner.project_id} is over its limit of 1 concurrent web-download imports "
        "(1 unfinished); retry once one of them has finished."
    )
    assert other_project.status_code == 202
    assert reloaded(second).status == "queued"
    assert "os_glance_import_task" not in reloaded(second).property_dict()
    assert not Task.objects.filter(image_id=second.id).exists()


def test_project_limit_counts_only_unfinished_web_downloads(owner, make_image, source, settings):
    settings.WEB_DOWNLOAD_PROJECT_LIMIT = 1
    first, second = (
        make_image(disk_format="raw", container_format="bare"),
        make_image(disk_format="raw", container_format="bare"),
    )

    start_import(owner, first, source.url("/fast"))  # runs inline and finishes
    response = start_import(owner, second, source.url("/fast"))

    assert response.status_code == 202
    assert reloaded(second).status == "active"


# --- the cap on web-downloads running at once -----------------------------------------------


def running_elsewhere(owner) -> Task:
    """A web-download another job worker is running (its heartbeat is fresh)."""
    return Task.objects.create(
        owner=owner.project_id,
        status="processing",
        heartbeat_at=timezone.now(),
        input={"import_req": {"method": {"name": "web-download", "uri": "http://x/"}}},
    )


def test_download_beyond_the_worker_cap_waits_without_holding_a_worker(
    owner, queued, source, settings
):
    settings.WEB_DOWNLOAD_WORKERS = 1
    running_elsewhere(owner)

    response = start_import(owner, queued, source.url("/fast"))

    assert response.status_code == 202
    task = Task.objects.get(image_id=queued.id)
    assert (task.status, task.message) == ("pending", WAITING)
    assert reloaded(queued).status == "queued"
    assert reloaded(queued).import_lock_holder() == task.id


def test_glance_direct_runs_while_the_download_slots_are_taken(owner, make_image, settings):
    settings.WEB_DOWNLOAD_WORKERS = 1
    running_elsewhere(owner)
    image = make_image(disk_format="raw", container_format="bare")
    client = owner.client()
    client.put(f"/v2/images/{image.id}/stage", data=DATA, content_type="application/octet-stream")

    response = client.post(
        f"/v2/images/{image.id}/import",
        data=json.dumps({"method": {"name": "glance-direct"}}),
        content_type="application/json",
    )

    assert response.status_code == 202
    assert reloaded(image).status == "active"


def test_finished_download_wakes_the_waiting_one(owner, make_image, source, settings):
    settings.WEB_DOWNLOAD_WORKERS = 1
    elsewhere = running_elsewhere(owner)
    waiting, next_one = (
        make_image(disk_format="raw", container_format="bare"),
        make_image(disk_format="raw", container_format="bare"),
    )
    start_import(owner, waiting, source.url("/fast"))
    elsewhere.finish("success", "")

    # The next download to end (this one, at once: a slot is free) wakes the waiting one.
    start_import(owner, next_one, source.url("/fast"))

    assert reloaded(next_one).status == "active"
    assert reloaded(waiting).status == "active"
    assert Task.objects.get(image_id=waiting.id).status == "success"


def test_recover_imports_wakes_a_download_nobody_woke(owner, queued, source, settings):
    settings.WEB_DOWNLOAD_WORKERS = 1
    elsewhere = running_elsewhere(owner)
    start_import(owner, queued, source.url("/fast"))
    # The worker that ran the other download died: no one wakes the waiting task.
    elsewhere.finish("failure", "killed")
    silent = timezone.now() - timezone.timedelta(seconds=3 * settings.IMPORT_STALE_SECONDS)
    Task.objects.filter(image_id=queued.id).update(heartbeat_at=silent, updated_at=silent)

    call_command("recover_imports", stdout=StringIO())

    assert reloaded(queued).status == "active"
    assert Task.objects.get(image_id=queued.id).status == "success"
    assert Image.objects.get(pk=queued.pk).size == len(DATA)
