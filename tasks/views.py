"""The Tasks API (``/v2/tasks``, admin-only by default) and ``GET /v2/images/{id}/tasks``."""

from __future__ import annotations

from rest_framework.response import Response

from images.views.lookup import ImageLookupMixin
from imageservice.api import GlanceAPIView
from imageservice.errors import GlanceError
from tasks import services
from tasks.filters import list_tasks
from tasks.models import Task
from tasks.serializers import image_task_row, task_stub, task_to_dict


class TasksView(GlanceAPIView):
    # Glance enforces only tasks_api_access on /v2/tasks; get_tasks/add_task stay registered.
    policy_map = {"get": "tasks_api_access", "post": "tasks_api_access"}

    def get(self, request):
        page = list_tasks(request.query_params, request.credentials.project_id, self.is_admin)
        return Response(page.body("tasks", [task_stub(task) for task in page.items]))

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
        if task is None or not task.is_visible_to(request.credentials.project_id, self.is_admin):
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
        tasks = Task.objects.alive().visible_to(request.credentials.project_id, self.is_admin)
        tasks = tasks.filter(image_id=image.id)
        return Response({"tasks": [image_task_row(task) for task in tasks.order_by("created_at")]})
