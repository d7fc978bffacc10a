"""``/v2/images/{id}/file``: upload and download of image data (§6)."""

from __future__ import annotations

from django.http import FileResponse, StreamingHttpResponse

from images import data
from images.models import ImageStatus
from images.storage import stores
from images.storage.writer import CHUNK_SIZE
from imageservice.api import GlanceAPIView, no_content
from imageservice.errors import GlanceError

UPLOAD_MEDIA_TYPE = "application/octet-stream"


def announced_size(request) -> int | None:
    """``x-openstack-image-size``, else ``Content-Length``: what the client says it sends."""
    header = request.headers.get("X-Openstack-Image-Size")
    if header is None:
        return content_length(request)
    try:
        size = int(header)
    except ValueError:
        raise GlanceError(400, "Invalid or missing image size in request headers.") from None
    if size < 0:
        raise GlanceError(400, "Invalid or missing image size in request headers.")
    return size


def content_length(request) -> int | None:
    value = request.META.get("CONTENT_LENGTH")
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise GlanceError(400, "Invalid Content-Length.") from None


def check_upload_media_type(request) -> None:
    media_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if media_type != UPLOAD_MEDIA_TYPE:
        raise GlanceError(
            415, detail=f"Content-Type must be {UPLOAD_MEDIA_TYPE}, got '{media_type}'."
        )


class ImageFileView(GlanceAPIView):
    policy_map = {"put": "upload_image", "get": "download_image"}
    policy_object = True
    bodyless_methods = ("get",)

    def put(self, request, image_id: str):
        check_upload_media_type(request)
        size = announced_size(request)
        store = stores.store_named(request.headers.get("X-Image-Meta-Store"))
        image = self.get_image(image_id)
        body = data.BodyReader(request._request.META["wsgi.input"], content_length(request))
        data.upload(image, body, announced_size=size, store=store)
        return no_content()

    def get(self, request, image_id: str):
        image = self.get_image(image_id)
        if image.status == ImageStatus.DEACTIVATED and not self.is_admin:
            raise GlanceError(
                403,
                "The requested image has been deactivated. Image data download is forbidden.",
            )
        path = data.data_path(image)
        if path is None or image.size is None:
            return no_content()
        byte_range = data.parse_range(
            request.headers.get("Range"), request.headers.get("Content-Range"), image.size
        )
        response = (
            _whole_file(path) if byte_range is None else _partial_file(path, byte_range, image.size)
        )
        if image.checksum:
            response["Content-MD5"] = image.checksum
        return response


def _whole_file(path) -> FileResponse:
    # FileResponse hands the open file to the server, which sends it with sendfile(2).
    # The response closes the file when the server is done with it.
    handle = open(path, "rb")  # noqa: SIM115
    response = FileResponse(handle, content_type="application/octet-stream")
    del response["Content-Disposition"]  # Glance sends none
    return response


def _partial_file(path, byte_range: data.ByteRange, size: int) -> StreamingHttpResponse:
    response = StreamingHttpResponse(
        _read_range(path, byte_range), status=206, content_type="application/octet-stream"
    )
    response["Content-Range"] = f"bytes {byte_range.start}-{byte_range.end}/{size}"
    response["Content-Length"] = str(byte_range.length)
    return response


def _read_range(path, byte_range: data.ByteRange):
    with open(path, "rb") as handle:
        handle.seek(byte_range.start)
        remaining = byte_range.length
        while remaining > 0:
            chunk = handle.read(min(CHUNK_SIZE, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk
