"""Timing one image import: `POST /v2/images/{id}/import`, then `GET` until the image gets there.

The clock runs from sending the POST to reading the GET that shows the wanted state, polled
every POLL_INTERVAL on one keep-alive connection; a failed task or image status ends it early.
"""

from __future__ import annotations

import http.client
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from common.client import TRANSFER_ERRORS, BenchError, Client, check_deadline, error_text
from common.payload import check_stored

POLL_INTERVAL = 0.02
IMPORT_TIME_LIMIT = 60.0  # POST /import to active, per import
TASK_CHECK_EVERY = 25  # polls: while the image still shows `uploading`, look at its task
# A random pause before each timed import. Back to back, an import would be posted right after
# the job worker's broker poll found the previous one, and always wait a whole poll interval
# (django-q2's ORM broker sleeps `poll`, 0.2 s, after an empty look); Glance's users do not
# import in step with the worker.
GAP_SECONDS = (0.25, 0.75)


@dataclass
class Import:
    """One timed import of an image, and what was checked once it got there."""

    name: str
    image_id: str
    size: int
    post_seconds: float = 0.0  # POST sent → 202 read
    seconds: float = 0.0  # POST sent → a GET showing `active` read
    polls: int = 0
    error: str | None = None
    checks: list[str] = field(default_factory=list)


def check_not_failed(client: Client, item: Import, image: dict) -> None:
    """Raise if the image or, every TASK_CHECK_EVERY polls, its newest task shows a failure."""
    if image.get("status") not in {"uploading", "importing", "active"}:
        raise BenchError(f"image went {image.get('status')}")
    if item.polls % TASK_CHECK_EVERY == 0:
        status, body = client.request_json("GET", f"/v2/images/{item.image_id}/tasks")
        tasks = body.get("tasks", []) if status == 200 and isinstance(body, dict) else []
        task = max(tasks, key=lambda task: task.get("created_at", ""), default=None)
        if task and task.get("status") == "failure":
            raise BenchError(f"import task failed: {task.get('message')}")


def poll_until(client: Client, item: Import, done: Callable[[dict], bool], deadline: float) -> dict:
    """GET the image every POLL_INTERVAL on one keep-alive connection until `done` says so."""
    connection = client.connect()
    path = f"/v2/images/{item.image_id}"
    try:
        next_poll = time.perf_counter()
        while True:
            check_deadline(deadline, IMPORT_TIME_LIMIT)
            try:
                status, image = client.send_json(connection, "GET", path)
            except (OSError, http.client.HTTPException):
                connection.close()  # the server closed the idle connection: once more, afresh
                status, image = client.send_json(connection, "GET", path)
            item.polls += 1
            if status != 200:
                raise BenchError(f"GET image answered {status}: {image}")
            if done(image):
                return image
            check_not_failed(client, item, image)
            next_poll += POLL_INTERVAL
            time.sleep(max(0.0, next_poll - time.perf_counter()))
    finally:
        connection.close()


def timed_import(
    client: Client, item: Import, request: dict, done: Callable[[dict], bool]
) -> dict | None:
    """POST the import and poll until ``done``: the image then, or None with ``item.error``."""
    time.sleep(random.uniform(*GAP_SECONDS))
    deadline = time.monotonic() + IMPORT_TIME_LIMIT
    started = time.perf_counter()
    try:
        status, body = client.request_json("POST", f"/v2/images/{item.image_id}/import", request)
        item.post_seconds = time.perf_counter() - started
        if status != 202:
            raise BenchError(f"POST /import answered {status}: {body}")
        return poll_until(client, item, done, deadline)
    except TRANSFER_ERRORS as error:
        item.error = error_text(error)
        return None
    finally:
        item.seconds = time.perf_counter() - started


def check_active(image: dict, item: Import, digests: tuple[str, str]) -> None:
    """The imported image must carry the size and hashes of the data sent."""
    if not check_stored(image, item.size, digests, item.checks):
        item.error = "the active image does not carry the hashes of the data sent"
