"""``/v2/schemas/*``: the JSON schemas clients validate against (§11)."""

from __future__ import annotations

from rest_framework.response import Response

from images import schemas
from imageservice.api import GlanceAPIView
from imageservice.openapi import operations as doc

DOCUMENTS = {
    "image": schemas.image_schema,
    "images": schemas.images_schema,
    "member": schemas.member_schema,
    "members": schemas.members_schema,
    "task": schemas.task_schema,
    "tasks": schemas.tasks_schema,
}


class SchemaView(GlanceAPIView):
    policy_map = {"get": "get_schemas"}
    schema_name = ""

    def initial(self, request, *args, **kwargs):
        # Glance checks for a body on the image and member schemas but not on the task ones.
        self.bodyless_methods = () if self.schema_name.startswith("task") else ("get",)
        super().initial(request, *args, **kwargs)

    @doc.glance_operation(
        None, "A Glance JSON-schema document", tag="schemas", ok={200: "SchemaDocument"}
    )
    def get(self, request):
        return Response(DOCUMENTS[self.schema_name]())
