"""Quotas against real servers: parallel uploads in four gunicorn worker processes (two servers
on one database) never end over the project's limit together, and glanceclient's usage call
(``glance usage``) reads ``/v2/info/usage``. openstacksdk has no usage call."""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from urllib.parse import urlsplit

import glanceclient
import pytest

from tests.live.helpers import run_glance

MIB = 1024 * 1024
# Two of these never fit in the room the test leaves (between 2 and 3 MiB); one always does.
UPLOAD_SIZE = MIB * 16 // 10
CHUNK = 64 * 1024


def call(url: str, token: str, method: str = "GET", body=None, **headers: str):
    request = urllib.request.Request(
        url, data=body, method=method, headers={"X-Auth-Token": token, **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def usage_of(service, account) -> dict[str, dict[str, int]]:
    status, body = call(f"{service.url}/v2/info/usage", account.token, Accept="application/json")
    assert status == 200
    return json.loads(body)["usage"]


def new_image(service, account, name: str) -> str:
    body = json.dumps({"name": name, "disk_format": "raw", "container_format": "bare"})
    status, answer = call(
        f"{service.url}/v2/images",
        account.token,
        "POST",
        body.encode(),
        **{"Content-Type": "application/json"},
    )
    assert status == 201
    return json.loads(answer)["id"]


def put_chunked(url: str, token: str, chunks: Iterable[bytes]) -> int:
    """The status of a chunked PUT; a server refusing mid-body answers and closes, as Glance
    does, so a send cut short still reads the answer waiting on the socket."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        connection.putrequest("PUT", parts.path)
        for name, value in (
            ("X-Auth-Token", token),
            ("Content-Type", "application/octet-stream"),
            ("Transfer-Encoding", "chunked"),
        ):
            connection.putheader(name, value)
        connection.endheaders()
        try:
            for chunk in chunks:
                connection.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            connection.send(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        return connection.getresponse().status
    finally:
        connection.close()


def trickled(start: threading.Barrier) -> Iterator[bytes]:
    """An upload body of unknown size (sent chunked), started together with the others and
    slow enough that they all write at the same time."""
    start.wait()
    for _ in range(UPLOAD_SIZE // CHUNK):
        yield b"q" * CHUNK
        time.sleep(0.01)
    yield b"q" * (UPLOAD_SIZE % CHUNK)


@pytest.fixture
def size_limit_with_room(live_service) -> Iterator[int]:
    """The user's project limited to what it stores now plus 3 MiB; its defaults afterwards."""
    account = live_service.user
    limit = usage_of(live_service, account)["image_size_total"]["usage"] + 3
    live_service.manage("project_limits", account.project_id, f"--image-size-total={limit}")
    try:
        yield limit
    finally:
        live_service.manage("project_limits", account.project_id, "--defaults")


def test_parallel_uploads_never_end_over_the_size_limit(
    live_service, extra_live_service, size_limit_with_room, unique
):
    account = live_service.user
    servers = [live_service, live_service, extra_live_service()]
    images = [new_image(live_service, account, f"quota-race-{unique}-{n}") for n in range(3)]
    start = threading.Barrier(len(images))
    statuses: dict[str, int] = {}

    def upload(server, image_id: str) -> None:
        statuses[image_id] = put_chunked(
            f"{server.url}/v2/images/{image_id}/file", account.token, trickled(start)
        )

    threads = [
        threading.Thread(target=upload, args=(server, image_id))
        for server, image_id in zip(servers, images, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    try:
        assert sorted(statuses.values()) == [204, 413, 413]
        usage = usage_of(live_service, account)["image_size_total"]
        assert usage["usage"] <= size_limit_with_room
        shown = {
            image_id: json.loads(call(f"{live_service.url}/v2/images/{image_id}", account.token)[1])
            for image_id in images
        }
        active = [image for image in shown.values() if image["status"] == "active"]
        assert [image["size"] for image in active] == [UPLOAD_SIZE]
        assert sorted(image["status"] for image in shown.values()) == ["active", "queued", "queued"]
    finally:
        for image_id in images:
            call(f"{live_service.url}/v2/images/{image_id}", account.token, "DELETE")


def test_glanceclient_reads_usage_and_limits(live_service):
    account = live_service.other
    live_service.manage("project_limits", account.project_id, "--image-count-total=50")
    try:
        glance = glanceclient.Client("2", endpoint=live_service.url, token=account.token)

        usage = glance.info.get_usage()

        assert set(usage) == {
            "image_size_total",
            "image_stage_total",
            "image_count_total",
            "image_count_uploading",
        }
        assert usage["image_count_total"]["limit"] == 50
        assert usage["image_size_total"]["limit"] == -1
        assert usage_of(live_service, account) == dict(usage)
    finally:
        live_service.manage("project_limits", account.project_id, "--defaults")


def test_glance_usage_command_prints_the_table(live_service):
    printed = run_glance(live_service, "usage")

    assert "image_count_total" in printed
    assert "image_stage_total" in printed
