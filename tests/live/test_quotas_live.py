"""Quotas against real servers: parallel uploads in four gunicorn worker processes (two servers
on one database) never end over the project's limit together, and glanceclient's usage call
(``glance usage``) reads ``/v2/info/usage``. openstacksdk has no usage call."""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from urllib.parse import urlsplit

import glanceclient
import pytest

from tests.live.conftest import LiveAccount
from tests.live.helpers import run_glance

MIB = 1024 * 1024
# Two of these never fit in a 2 MiB limit; one does.
UPLOAD_SIZE = MIB * 3 // 2
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
def fresh_account(live_service, unique) -> LiveAccount:
    """A project of its own (nothing stored yet, so every byte is accounted for), with a user
    and a token, made with the identity commands."""
    name = f"quota-{unique}"
    created = live_service.manage("create_project", name)
    project_id = re.search(r"\(id ([^)]+)\)", created)[1]
    live_service.manage("create_user", name, "--project", name)
    token = live_service.manage("issue_token", name).strip().splitlines()[-1]
    return LiveAccount(name, token, project_id)


def race(servers, account, where: str, unique: str) -> dict[str, int]:
    """Three images of ``account`` written at once (``file`` or ``stage``), one per server in
    ``servers``: each image's status code."""
    images = [new_image(servers[0], account, f"quota-race-{unique}-{n}") for n in range(3)]
    start = threading.Barrier(len(images))
    statuses: dict[str, int] = {}

    def send(server, image_id: str) -> None:
        url = f"{server.url}/v2/images/{image_id}/{where}"
        statuses[image_id] = put_chunked(url, account.token, trickled(start))

    threads = [
        threading.Thread(target=send, args=(server, image_id))
        for server, image_id in zip(servers, images, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return statuses


def shown(service, account, image_id: str) -> dict:
    status, body = call(f"{service.url}/v2/images/{image_id}", account.token)
    assert status == 200
    return json.loads(body)


@pytest.mark.parametrize(
    ("where", "limit", "written_status"),
    [("file", "--image-size-total=2", "active"), ("stage", "--image-stage-total=2", "uploading")],
)
def test_parallel_writes_never_end_over_the_projects_limit(
    live_service, extra_live_service, fresh_account, unique, where, limit, written_status
):
    live_service.manage("project_limits", fresh_account.project_id, limit)
    # Four worker processes on two servers sharing the database: three writes at once.
    servers = [live_service, live_service, extra_live_service()]

    statuses = race(servers, fresh_account, where, unique)

    assert sorted(statuses.values()) == [204, 413, 413]
    images = {image_id: shown(live_service, fresh_account, image_id) for image_id in statuses}
    written = [image for image in images.values() if image["status"] == written_status]
    assert [image["size"] for image in written] == [UPLOAD_SIZE]
    assert sorted(image["status"] for image in images.values()).count("queued") == 2
    name = "image_size_total" if where == "file" else "image_stage_total"
    assert usage_of(live_service, fresh_account)[name] == {"limit": 2, "usage": 1}


def test_parallel_uploads_never_end_over_user_storage_quota(
    live_service, extra_live_service, fresh_account, unique
):
    """The issue's case: three uploads that each fit used to end 60 % over the legacy quota."""
    quota = str(2 * MIB)
    first, second = (extra_live_service(USER_STORAGE_QUOTA=quota) for _ in range(2))

    statuses = race([first, first, second], fresh_account, "file", unique)

    assert sorted(statuses.values()) == [204, 413, 413]
    sizes = [shown(first, fresh_account, image_id)["size"] for image_id in statuses]
    assert sorted(sizes, key=lambda size: size or 0) == [None, None, UPLOAD_SIZE]


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
