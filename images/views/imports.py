"""``PUT /stage``, ``POST /import`` and ``GET /v2/info/import`` (v2.6 interoperable import)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse
from rest_framework.response import Response

from images import data
from images.views.lookup import ImageLookupMixin
from images.views.transfer import (
    BodyReader,
    announced_size,
    check_upload_media_type,
    content_length,
)
from imageservice.api import GlanceAPIView, no_content
from imageservice.errors import GlanceError
from imageservice.openapi import operations as doc
from tasks import services as imports


class ImportAPIView(ImageLookupMixin, GlanceAPIView):
    def initial(self, request, *args, **kwargs):
        # With import switched off these routes do not exist, exactly as in a v2.5 Glance.
        if not settings.ENABLE_IMAGE_IMPORT:
            raise GlanceError(404)
        super().initial(request, *args, **kwargs)


class ImportInfoView(ImportAPIView):
    policy_map = {"get": "get_discovery"}
    bodyless_methods = ("get",)

    @doc.glance_operation(
        "import_info",
        "The import methods this site offers",
        tag="import",
        ok={200: "ImportInfo"},
        errors=(404,),
    )
    def get(self, request):
        return Response(
            {
                "import-methods": {
                    "description": "Import methods available.",
                    "type": "array",
                    "value": list(settings.ENABLED_IMPORT_METHODS),
                }
            }
        )


class StageView(ImportAPIView):
    policy_map = {"put": "modify_image"}
    policy_object = True

    @doc.glance_operation(
        "stage_data",
        "Stage image data for a glance-direct import",
        tag="import",
        body=doc.BINARY,
        ok={204: None},
        errors=(404, 409, 410, 413, 415, 503),
        parameters=[doc.IMAGE_SIZE],
    )
    def put(self, request, image_id: str):
        if "glance-direct" not in settings.ENABLED_IMPORT_METHODS:
            raise GlanceError(404, "'glance-direct' method is not available at this site.")
        check_upload_media_type(request)
        size = announced_size(request)
        image = self.get_image(image_id)
        body = BodyReader(request._request.META["wsgi.input"], content_length(request))
        data.stage(image, body, announced_size=size)
        return no_content()


class ImportView(ImportAPIView):
    # copy-image imports are checked against copy_image instead, by the service: Glance checks
    # the image's status before the policy.
    policy_map = {"post": "modify_image"}
    policy_object = True

    @doc.glance_operation(
        "import_image",
        "Import image data (glance-direct, web-download, copy-image)",
        tag="import",
        body="ImportRequest",
        ok={202: {"text/html": {"type": "string", "maxLength": 0}}},
        errors=(404, 409, 413),
        parameters=[doc.header("X-Image-Meta-Store", "The target store (several stores only)")],
        description="Accepted: the import runs as a job; follow it with the image's tasks.",
    )
    def post(self, request, image_id: str):
        import_request = imports.parse_import_request(self.json_body())
        imports.import_image(
            self.get_image(image_id, authorize=False),
            import_request,
            request.credentials,
            store_header=request.headers.get("X-Image-Meta-Store"),
            request_id=getattr(request._request, "request_id", None),
        )
        # An empty 202 that claims no JSON: glanceclient would try to decode it.
        return HttpResponse(status=202, content_type="text/html; charset=UTF-8")
