"""``/v2/images/{id}/file``: upload and download of image data (§6)."""

from __future__ import annotations

from django.http import StreamingHttpResponse

from images import data
from images.models import ImageStatus
from images.storage import stores
from images.views.lookup import ImageLookupMixin
from images.views.transfer import (
    BodyReader,
    announced_size,
    check_upload_media_type,
    content_length,
    parse_range,
)
from imageservice.api import GlanceAPIView, no_content
from imageservice.errors import GlanceError
from imageservice.openapi import operations as doc
from imageservice.policy.permissions import require_image_policy

STORE_HEADER = doc.header("X-Image-Meta-Store", "The store to write to (several stores only)")


class ImageFileView(ImageLookupMixin, GlanceAPIView):
    policy_map = {"put": "upload_image", "get": "download_image"}
    policy_object = True
    bodyless_methods = ("get",)

    @doc.glance_operation(
        "upload_data",
        "Upload image data",
        tag="data",
        body=doc.BINARY,
        ok={204: None},
        errors=(404, 409, 410, 413, 415, 503),
        parameters=[STORE_HEADER, doc.IMAGE_SIZE],
        description="Content-Length or chunked; the image becomes active.",
    )
    def put(self, request, image_id: str):
        check_upload_media_type(request)
        size = announced_size(request)
        store = stores.store_named(request.headers.get("X-Image-Meta-Store"))
        image = self.get_image(image_id)
        body = BodyReader(request._request.META["wsgi.input"], content_length(request))
        data.upload(image, body, announced_size=size, store=store)
        return no_content()

    @doc.glance_operation(
        "download_data",
        "Download image data",
        tag="data",
        ok={200: doc.BINARY, 204: None, 206: doc.BINARY},
        errors=(404, 416, 503),
        parameters=[
            doc.header("Range", "One range: `bytes=first-last`, `bytes=first-`, `bytes=-n`"),
            doc.header("Content-Range", "`bytes first-last/size`, as older clients send it"),
        ],
        description="204 when the image has no data.",
    )
    def get(self, request, image_id: str):
        image = self.get_image(image_id)
        if image.status == ImageStatus.DEACTIVATED and not self.is_admin:
            raise GlanceError(
                403,
                "The requested image has been deactivated. Image data download is forbidden.",
            )
        if image.size is None or not image.locations.exists():
            return no_content()
        byte_range = parse_range(
            request.headers.get("Range"), request.headers.get("Content-Range"), image.size
        )
        chunks = data.open_data(image, byte_range)
        if chunks is None:
            return no_content()
        response = StreamingHttpResponse(chunks, content_type="application/octet-stream")
        if byte_range is None:
            response["Content-Length"] = str(image.size)
        else:
            response.status_code = 206
            response["Content-Range"] = f"bytes {byte_range.start}-{byte_range.end}/{image.size}"
            response["Content-Length"] = str(byte_range.length)
        if image.checksum:
            response["Content-MD5"] = image.checksum
        return response


class StoreDataView(ImageLookupMixin, GlanceAPIView):
    """``DELETE /v2/stores/{store_id}/{image_id}`` (v2.10): remove one store's copy."""

    policy_map = {"delete": "delete_image_location"}
    policy_object = True
    bodyless_methods = ("delete",)

    @doc.glance_operation(
        "delete_from_store",
        "Delete an image's data from one store",
        tag="data",
        ok={204: None},
        errors=(404, 409),
        description="404 unless several stores are configured (v2.10).",
    )
    def delete(self, request, store_id: str, image_id: str):
        if not stores.multiple_stores():
            raise GlanceError(404)
        if store_id not in stores.all_stores():
            raise GlanceError(409, f"The selected store {store_id} is not available on this node.")
        image = self.get_image(image_id, authorize=False)
        # Glance checks both: reading the locations, then deleting one.
        require_image_policy("get_image_location", request.credentials, image)
        require_image_policy("delete_image_location", request.credentials, image)
        data.delete_from_store(image, store_id)
        return no_content()

    def not_found_message(self, image_id: str) -> str:
        return f"Failed to find image {image_id}"
