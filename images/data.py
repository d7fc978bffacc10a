"""Image data calls: upload (``PUT /file``) and download (``GET /file``), §6."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from images.models import Image, ImageLocation, ImageStatus, InvalidTransition, StagedData
from images.storage import staging, stores
from images.storage.inspection import Detection
from images.storage.writer import Readable, WritePlan, WrittenData, write_image
from imageservice.errors import GlanceError

HEARTBEAT_SECONDS = 10


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


def storage_used(owner: str | None, excluding: Image) -> int:
    """Bytes the project keeps in stores: each image's size once per store holding it."""
    total = (
        ImageLocation.objects.filter(image__owner=owner, image__deleted=False)
        .exclude(image=excluding)
        .aggregate(total=Sum("image__size"))["total"]
    )
    return total or 0


def _byte_limit(image: Image) -> tuple[int, callable]:
    cap = settings.IMAGE_SIZE_CAP
    if not settings.USER_STORAGE_QUOTA:
        return cap, lambda size: _too_large()
    remaining = max(settings.USER_STORAGE_QUOTA - storage_used(image.owner, image), 0)
    if cap <= remaining:
        return cap, lambda size: _too_large()
    return remaining, lambda size: _over_quota(size, remaining)


def _too_large() -> GlanceError:
    return GlanceError(413, "The incoming image is too large: The provided image is too large.")


def _over_quota(size: int, remaining: int) -> GlanceError:
    return GlanceError(
        413,
        f"Image exceeds the storage quota: The size of the data {size} will exceed the limit. "
        f"{remaining} bytes remaining.",
    )


def check_announced_size(image: Image, announced: int | None) -> None:
    """Refuse up front what is known to be too big (Glance's first upload check)."""
    if announced is None:
        return
    limit, error = _byte_limit(image)
    if announced > limit:
        raise error(announced)


def upload(
    image: Image, body: Readable, *, announced_size: int | None, store: stores.FilesystemStore
) -> WrittenData:
    """Stream ``body`` into ``store`` and activate the image; on failure it is ``queued`` again
    with no bytes left anywhere."""
    check_announced_size(image, announced_size)
    if image.is_stale_upload():
        recover_stale_upload(image)
    try:
        image.begin_saving()
    except InvalidTransition as error:
        raise GlanceError(409, str(error)) from error
    try:
        if not (image.disk_format and image.container_format):
            raise GlanceError(
                400, "Properties disk_format, container_format must be set prior to saving data."
            )
        written = _write(image, body, announced_size, store)
    except BaseException:
        # Whatever went wrong (client gone, limits, format), the image must be uploadable again.
        image.revert_to_queued()
        raise
    if not image.activate_with_data(written, store.id, store.url_for(image.id)):
        store.delete(image.id)
        raise GlanceError(
            410,
            f"Image {image.id} could not be found after upload. The image may have been deleted "
            "during the upload, cleaning up the chunks uploaded.",
        )
    return written


def _write(image: Image, body: Readable, announced_size: int | None, store) -> WrittenData:
    limit, error = _byte_limit(image)
    plan = WritePlan(
        hash_algo=settings.HASHING_ALGORITHM,
        byte_limit=limit,
        limit_error=error,
        expected_size=announced_size,
        disk_format=image.disk_format,
        inspect=image.container_format == "bare",
        require_format_match=settings.REQUIRE_IMAGE_FORMAT_MATCH,
        on_progress=UploadHeartbeat(image),
    )
    store.directory.mkdir(parents=True, exist_ok=True)
    return write_image(body, store.path_for(image.id), store.temporary_path_for(image.id), plan)


class UploadHeartbeat:
    """Moves ``updated_at`` while bytes flow, so a dead upload can be told from a slow one."""

    def __init__(self, image: Image, status: str = ImageStatus.SAVING):
        self.image = image
        self.status = status
        self.last_beat = time.monotonic()

    def __call__(self, size: int) -> None:
        now = time.monotonic()
        if now - self.last_beat >= HEARTBEAT_SECONDS:
            self.last_beat = now
            Image.objects.filter(pk=self.image.pk, status=self.status).update(
                updated_at=timezone.now()
            )


def recover_stale_upload(image: Image) -> None:
    """Put an image whose upload or staging died with its worker back to ``queued``, partial
    bytes gone."""
    for store in stores.all_stores().values():
        store.temporary_path_for(image.id).unlink(missing_ok=True)
    if image.status == ImageStatus.UPLOADING:
        staging.remove_staged(image.id)
    image.revert_to_queued(source=image.status)


def stage(image: Image, body: Readable, *, announced_size: int | None) -> WrittenData:
    """``PUT /stage``: stream into the staging area, hashing and inspecting on the way.

    Glance computes nothing here; we record size, hashes and the detected format so that an
    import without plugins can move the staged file into its store without reading it again.
    """
    if announced_size is not None and announced_size > settings.IMAGE_SIZE_CAP:
        raise _too_large()
    if image.is_stale_upload():
        recover_stale_upload(image)
    try:
        image.claim(ImageStatus.QUEUED, ImageStatus.UPLOADING)
    except InvalidTransition as error:
        raise GlanceError(409, str(error)) from error
    try:
        # A queued image owns no staged data: anything left there is an orphan of a failure.
        staging.remove_staged(image.id)
        written = _write_staged(image, body, announced_size)
    except BaseException:
        image.revert_to_queued(source=ImageStatus.UPLOADING)
        raise
    _record_staged(image, written)
    return written


def _write_staged(image: Image, body: Readable, announced_size: int | None) -> WrittenData:
    plan = WritePlan(
        hash_algo=settings.HASHING_ALGORITHM,
        byte_limit=settings.IMAGE_SIZE_CAP,
        limit_error=lambda size: _too_large(),
        expected_size=announced_size,
        inspect=True,
        judge_format=False,
        on_progress=UploadHeartbeat(image, ImageStatus.UPLOADING),
    )
    path = staging.staging_path_for(image.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_image(body, path, staging.temporary_staging_path_for(image.id), plan)


def _record_staged(image: Image, written: WrittenData) -> None:
    detection = written.detection or Detection()
    StagedData.objects.update_or_create(
        image=image,
        defaults={
            "size": written.size,
            "checksum": written.checksum,
            "os_hash_algo": written.os_hash_algo,
            "os_hash_value": written.os_hash_value,
            "detected_format": detection.name if detection else "",
            "virtual_size": detection.virtual_size if detection else None,
            "format_problem": (detection.ambiguity or detection.safety_problem)
            if detection
            else "",
        },
    )
    Image.objects.filter(pk=image.pk, status=ImageStatus.UPLOADING).update(size=written.size)
    image.size = written.size


def delete_data(image: Image) -> None:
    """Remove the image's bytes from every store that holds them, and from staging."""
    known = stores.all_stores()
    for location in image.locations.all():
        store = known.get(location.store)
        if store is not None:
            store.delete(image.id)
    image.locations.all().delete()
    staging.remove_staged(image.id)
    StagedData.objects.filter(image=image).delete()


# --- download --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1


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


def data_path(image: Image):
    """The file holding the image's bytes, or None when there are none to serve (204)."""
    if image.status not in (ImageStatus.ACTIVE, ImageStatus.DEACTIVATED):
        return None
    known = stores.all_stores()
    for location in image.locations.all():
        store = known.get(location.store)
        if store is not None and store.path_for(image.id).exists():
            return store.path_for(image.id)
    return None
