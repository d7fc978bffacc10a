"""The Tasks API (``/v2/tasks``, admin-only by default) and ``GET /v2/images/{id}/tasks``."""

from __future__ import annotations

from rest_framework.response import Response

from images.views.lookup import ImageLookupMixin
from imageservice.api import GlanceAPIView
from imageservice.errors import GlanceError
from imageservice.openapi import operations as doc
from tasks import services
from tasks.filters import list_tasks
from tasks.models import Task
from tasks.serializers import image_task_row, task_stub, task_to_dict


class TasksView(GlanceAPIView):
    # Glance enforces only tasks_api_access on /v2/tasks; get_tasks/add_task stay registered.
    policy_map = {"get": "tasks_api_access", "post": "tasks_api_access"}

    @doc.glance_operation(
        "list_tasks",
        "List tasks",
        tag="tasks",
        ok={200: "tasks"},
        parameters=[
            doc.query("limit", "Page size", int),
            doc.query("marker", "The id of the last task of the previous page"),
            doc.query("sort_key", "A sort key"),
            doc.query("sort_dir", "asc or desc"),
            doc.query("status", "pending, processing, success or failure"),
            doc.query("type", "import or api_image_import"),
        ],
    )
    def get(self, request):
        page = list_tasks(request.query_params, request.credentials.project_id, self.is_admin)
        return Response(page.body("tasks", [task_stub(task) for task in page.items]))

    @doc.glance_operation(
        "create_task",
        "Create a (legacy) import task",
        tag="tasks",
        body="TaskCreate",
        ok={201: "TaskWithProgress"},
        errors=(409, 413),
    )
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

    @doc.glance_operation(
        "show_task", "Show a task", tag="tasks", ok={200: "TaskWithProgress"}, errors=(404,)
    )
    def get(self, request, task_id: str):
        task = Task.objects.alive().filter(pk=task_id).first()
        if task is None or not task.is_visible_to(request.credentials.project_id, self.is_admin):
            raise GlanceError(404, f"Could not find task {task_id}")
        return Response(task_to_dict(task))

    @doc.glance_operation(
        "delete_task",
        "Tasks cannot be deleted",
        tag="tasks",
        ok={},
        errors=(405,),
        description="Always 405.",
    )
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

    @doc.glance_operation(
        "image_tasks", "The tasks of an image", tag="tasks", ok={200: "ImageTasks"}, errors=(404,)
    )
    def get(self, request, image_id: str):
        image = self.get_image(image_id)
        tasks = Task.objects.alive().visible_to(request.credentials.project_id, self.is_admin)
        tasks = tasks.filter(image_id=image.id)
        return Response({"tasks": [image_task_row(task) for task in tasks.order_by("created_at")]})
