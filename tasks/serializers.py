"""Tasks as Glance shows them: full objects, list stubs, and raw rows for an image's tasks."""

from __future__ import annotations

from datetime import datetime

from images.serializers import glance_timestamp
from tasks.models import Task

OPTIONAL_FIELDS = ("image_id", "request_id", "user_id")


def progress(task: Task) -> dict[str, object]:
    return {"bytes_done": task.bytes_done, "bytes_total": task.bytes_total, "percent": task.percent}


def task_to_dict(task: Task) -> dict[str, object]:
    body: dict[str, object] = {
        "id": task.id,
        "type": task.type,
        "status": task.status,
        "input": _public_input(task),
        "result": task.result,
        "owner": task.owner,
        "message": task.message,
        "created_at": glance_timestamp(task.created_at),
        "updated_at": glance_timestamp(task.updated_at),
        "self": f"/v2/tasks/{task.id}",
        "schema": "/v2/schemas/task",
        "progress": progress(task),
    }
    body.update({name: getattr(task, name) for name in OPTIONAL_FIELDS if getattr(task, name)})
    if task.expires_at:
        body["expires_at"] = glance_timestamp(task.expires_at)
    return body


def task_stub(task: Task) -> dict[str, object]:
    body: dict[str, object] = {
        "id": task.id,
        "type": task.type,
        "status": task.status,
        "owner": task.owner,
        "created_at": glance_timestamp(task.created_at),
        "updated_at": glance_timestamp(task.updated_at),
        "self": f"/v2/tasks/{task.id}",
        "schema": "/v2/schemas/task",
    }
    if task.expires_at:
        body["expires_at"] = glance_timestamp(task.expires_at)
    return body


def _raw_time(value: datetime | None) -> str | None:
    # GET /v2/images/{id}/tasks shows database rows: microseconds, no zone (a Glance quirk).
    return value.replace(tzinfo=None).isoformat(timespec="microseconds") if value else None


def image_task_row(task: Task) -> dict[str, object]:
    return {
        "id": task.id,
        "type": task.type,
        "status": task.status,
        "owner": task.owner,
        "image_id": task.image_id,
        "request_id": task.request_id,
        "user_id": task.user_id,
        "input": _public_input(task),
        "result": task.result,
        "message": task.message,
        "expires_at": _raw_time(task.expires_at),
        "created_at": _raw_time(task.created_at),
        "updated_at": _raw_time(task.updated_at),
        "deleted": task.deleted,
        "deleted_at": _raw_time(task.deleted_at),
        "progress": progress(task),
    }


def _public_input(task: Task) -> dict | None:
    """The input as Glance shows it; the roles and settings snapshot stay internal (and, for a
    legacy ``import`` task, the import request it was turned into)."""
    if task.input is None:
        return None
    internal = {"roles", "caller", "settings"}
    if task.type == "import":
        internal |= {"import_req", "backend"}
    return {k: v for k, v in task.input.items() if k not in internal}
