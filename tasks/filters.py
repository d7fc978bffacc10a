"""GET /v2/tasks: filters, sorting and marker paging, as Glance's task list."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from imageservice.errors import GlanceError
from imageservice.paging import Page, keyset_page, parse_limit
from tasks.models import Task, TaskStatus

if TYPE_CHECKING:
    from django.db.models import QuerySet
    from django.http import QueryDict

SORT_KEYS = ("created_at", "updated_at", "expires_at", "status", "type", "id", "owner")
SORT_DIRS = ("asc", "desc")
TIE_BREAKERS = ("created_at", "id")


def list_tasks(params: QueryDict, project_id: str | None, is_admin: bool) -> Page:
    """One page of the tasks the caller may list, with ``first`` and ``next`` links."""
    tasks = filtered(Task.objects.alive().visible_to(project_id, is_admin), params)
    order = parse_order(params)
    limit = parse_limit(params)
    marker = params.get("marker")
    anchor = marker_task(marker, project_id, is_admin) if marker else None
    return keyset_page(tasks, order, limit, anchor, "/v2/tasks", params)


def filtered(tasks: QuerySet[Task], params: QueryDict) -> QuerySet[Task]:
    status = params.get("status")
    if status is not None:
        if status not in TaskStatus.values:
            raise GlanceError(400, f"Invalid status value: {status}")
        tasks = tasks.filter(status=status)
    task_type = params.get("type")
    if task_type is not None:
        if task_type != "import":
            raise GlanceError(400, f"Invalid type value: {task_type}")
        tasks = tasks.filter(type=task_type)
    return tasks


def parse_order(params: QueryDict) -> list[tuple[str, str]]:
    """One key and direction, then the ``created_at``/``id`` tie-breakers in that direction."""
    key = params.get("sort_key", "created_at")
    if key not in SORT_KEYS:
        raise GlanceError(400, f"Invalid sort key: {key}.")
    direction = params.get("sort_dir", "desc")
    if direction not in SORT_DIRS:
        raise GlanceError(400, f"Invalid sort direction: {direction}")
    return [(key, direction), *((k, direction) for k in TIE_BREAKERS if k != key)]


def marker_task(marker: str, project_id: str | None, is_admin: bool) -> Task:
    try:
        uuid.UUID(marker)
    except ValueError:
        raise GlanceError(400, "Invalid marker format") from None
    # Deleted and expired tasks still anchor a page: they may have gone since the last one.
    anchor = Task.objects.filter(pk=marker).first()
    if anchor is None or not anchor.is_visible_to(project_id, is_admin):
        raise GlanceError(400, f"Invalid marker. Task {marker} could not be found.")
    return anchor
