"""``/v2/images/{id}/file``: upload and download of image data (§6)."""

from __future__ import annotations

from django.http import StreamingHttpResponse

from images import data
from images.models import ImageStatus
from images.storage import stores
from images.storage.writer import CHUNK_SIZE, FLUSH_EVERY, release_cached_pages
from images.views.lookup import ImageLookupMixin
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


class ImageFileView(ImageLookupMixin, GlanceAPIView):
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
            _whole_file(path, image.size)
            if byte_range is None
            else _partial_file(path, byte_range, image.size)
        )
        if image.checksum:
            response["Content-MD5"] = image.checksum
        return response


def _whole_file(path, size: int) -> StreamingHttpResponse:
    response = StreamingHttpResponse(
        _read_range(path, data.ByteRange(0, size - 1)), content_type="application/octet-stream"
    )
    response["Content-Length"] = str(size)
    return response


def _partial_file(path, byte_range: data.ByteRange, size: int) -> StreamingHttpResponse:
    response = StreamingHttpResponse(
        _read_range(path, byte_range), status=206, content_type="application/octet-stream"
    )
    response["Content-Range"] = f"bytes {byte_range.start}-{byte_range.end}/{size}"
    response["Content-Length"] = str(byte_range.length)
    return response


def _read_range(path, byte_range: data.ByteRange):
    # Streamed rather than sendfile(2): releasing pages behind the reader keeps a download of
    # uncached data as fast as one of cached data (docs/benchmarks.md).
    with open(path, "rb", buffering=0) as handle:
        handle.seek(byte_range.start)
        position, released = byte_range.start, byte_range.start
        end = byte_range.end + 1
        while position < end:
            chunk = handle.read(min(CHUNK_SIZE, end - position))
            if not chunk:
                return
            position += len(chunk)
            if position - released >= FLUSH_EVERY:
                release_cached_pages(handle.fileno(), released, position - released)
                released = position
            yield chunk
