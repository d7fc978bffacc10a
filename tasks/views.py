"""The Tasks API (``/v2/tasks``, admin-only by default) and ``GET /v2/images/{id}/tasks``."""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

from django.conf import settings
from rest_framework.response import Response

from images.views.lookup import ImageLookupMixin
from imageservice.api import GlanceAPIView
from imageservice.errors import GlanceError
from tasks import services
from tasks.models import Task, TaskStatus
from tasks.serializers import image_task_row, task_stub, task_to_dict

SORT_KEYS = ("created_at", "updated_at", "expires_at", "status", "type", "id", "owner")


class TasksView(GlanceAPIView):
    # Glance enforces only tasks_api_access on /v2/tasks; get_tasks/add_task stay registered.
    policy_map = {"get": "tasks_api_access", "post": "tasks_api_access"}

    def get(self, request):
        params = request.query_params
        tasks = Task.objects.alive()
        if not self.is_admin:
            tasks = tasks.filter(owner=request.credentials.project_id)
        tasks = _filtered(tasks, params)
        order = _order(params)
        limit = _limit(params)
        marker = params.get("marker")
        if marker:
            tasks = _after_marker(tasks, marker, order)
        page = list(tasks.order_by(*order)[:limit])
        body: dict[str, object] = {
            "tasks": [task_stub(task) for task in page],
            "first": _link(params),
            "schema": "/v2/schemas/tasks",
        }
        if page and len(page) == limit:
            body["next"] = _link(params, marker=page[-1].id)
        return Response(body)

    def post(self, request):
        task = services.create_legacy_import_task(
            self.json_body(), request.credentials, getattr(request._request, "request_id", None)
        )
        task.refresh_from_db()
        response = Response(task_to_dict(task), status=201)
        response["Location"] = request.build_absolute_uri(f"/v2/tasks/{task.id}")
        return response


class TaskView(GlanceAPIView):
    policy_map = {"get": "tasks_api_access", "delete": "tasks_api_access"}

    def get(self, request, task_id: str):
        task = Task.objects.alive().filter(pk=task_id).first()
        if task is None or not (self.is_admin or task.owner == request.credentials.project_id):
            raise GlanceError(404, f"Could not find task {task_id}")
        return Response(task_to_dict(task))

    def delete(self, request, task_id: str):
        raise GlanceError(
            405,
            "This operation is currently not permitted on Glance Tasks. They are auto deleted "
            "after reaching the time based on their expires_at property.",
            headers={"Allow": "GET"},
        )


class ImageTasksView(ImageLookupMixin, GlanceAPIView):
    policy_map = {"get": "get_image"}
    policy_object = True
    bodyless_methods = ("get",)

    def not_found_message(self, image_id: str) -> str | None:
        return None

    def get(self, request, image_id: str):
        image = self.get_image(image_id)
        tasks = Task.objects.alive().filter(image_id=image.id)
        if not self.is_admin:
            tasks = tasks.filter(owner=request.credentials.project_id)
        return Response({"tasks": [image_task_row(task) for task in tasks.order_by("created_at")]})


def _filtered(tasks, params):
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


def _order(params) -> list[str]:
    key = params.get("sort_key", "created_at")
    if key not in SORT_KEYS:
        raise GlanceError(400, f"Invalid sort key: {key}.")
    direction = params.get("sort_dir", "desc")
    if direction not in ("asc", "desc"):
        raise GlanceError(400, f"Invalid sort direction: {direction}")
    prefix = "-" if direction == "desc" else ""
    keys = [key, *(k for k in ("created_at", "id") if k != key)]
    return [f"{prefix}{k}" for k in keys]


def _limit(params) -> int:
    raw = params.get("limit")
    if raw is None:
        return settings.LIMIT_PARAM_DEFAULT
    try:
        limit = int(raw)
    except ValueError:
        raise GlanceError(400, "limit param must be an integer") from None
    if limit < 0:
        raise GlanceError(400, "limit param must be positive")
    return min(limit, settings.API_LIMIT_MAX)


def _after_marker(tasks, marker: str, order: list[str]):
    try:
        uuid.UUID(marker)
    except ValueError:
        raise GlanceError(400, "Invalid marker format") from None
    anchor = Task.objects.filter(pk=marker).first()
    if anchor is None:
        raise GlanceError(400, f"Invalid marker. Task {marker} could not be found.")
    ids = list(tasks.order_by(*order).values_list("id", flat=True))
    following = ids[ids.index(marker) + 1 :] if marker in ids else []
    return tasks.filter(pk__in=following)


def _link(params, marker: str | None = None) -> str:
    pairs = [(k, v) for k, values in params.lists() for v in values if k != "marker"]
    if marker:
        pairs.append(("marker", marker))
    query = urlencode(pairs)
    return f"/v2/tasks?{query}" if query else "/v2/tasks"
