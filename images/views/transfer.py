"""The HTTP side of image data: the request body as it arrives, what the client announces
about it, and the ``Range`` it asks for (§6)."""

from __future__ import annotations

import re

from images.storage.base import ByteRange
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


class BodyReader:
    """The request body as the server hands it over (de-chunked by gunicorn), read-only.

    Django's own body handling sees an empty body for chunked uploads and would buffer a
    Content-Length one, so image data is read straight from ``wsgi.input``.
    """

    def __init__(self, stream, content_length: int | None):
        self.stream = stream
        self.remaining = content_length

    def read(self, size: int) -> bytes:
        if self.remaining is not None:
            if self.remaining <= 0:
                return b""
            size = min(size, self.remaining)
        chunk = self.stream.read(size)
        if self.remaining is not None:
            if not chunk:
                raise GlanceError(400, "The request body ended before its Content-Length.")
            self.remaining -= len(chunk)
        return chunk


RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


def parse_range(range_header: str | None, content_range: str | None, size: int) -> ByteRange | None:
    """The single byte range asked for, or None for the whole image (§6.2)."""
    if range_header:
        if "," in range_header:
            raise GlanceError(
                400,
                "Requests with multiple ranges are not supported in Glance. You may make "
                "multiple single-range requests instead.",
            )
        return _from_range(range_header.strip(), size)
    if content_range:
        match = CONTENT_RANGE.match(content_range.strip())
        if not match:
            raise GlanceError(416)
        return _bounded(int(match.group(1)), int(match.group(2)), size)
    return None


def _from_range(header: str, size: int) -> ByteRange:
    match = RANGE.match(header)
    if not match or match.groups() == ("", ""):
        raise GlanceError(416)
    first, last = match.groups()
    if not first:  # bytes=-n: the last n bytes
        length = int(last)
        if length == 0:
            raise GlanceError(416)
        return ByteRange(max(size - length, 0), size - 1)
    return _bounded(int(first), int(last) if last else size - 1, size)


def _bounded(start: int, end: int, size: int) -> ByteRange:
    if start >= size or end < start:
        raise GlanceError(416)
    return ByteRange(start, min(end, size - 1))
