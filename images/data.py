"""Image data calls: upload (``PUT /file``), staging (``PUT /stage``), download (``GET /file``)
and removal of an image's bytes, §6. The bytes themselves are the stores' business
(``images.storage``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from django.conf import settings
from django.utils import timezone

from images.models import Image, ImageStatus, InvalidTransition
from images.storage import staging, stores
from images.storage.base import (
    IN_USE,
    ByteRange,
    DataInUse,
    ImageStore,
    Readable,
    WrittenData,
    new_attempt,
)
from images.storage.writer import PendingWrite, image_too_large, write_image, write_plan
from imageservice import events, metrics
from imageservice.errors import GlanceError
from imageservice.quotas import services as quotas
from imageservice.quotas.models import (
    IMAGE_COUNT_UPLOADING,
    IMAGE_SIZE_TOTAL,
    IMAGE_STAGE_TOTAL,
    ReservationArea,
)
from imageservice.quotas.usage import MIB

HEARTBEAT_SECONDS = 10
# The node an upload or staging ran on (hidden from API responses): where its logs and, for a
# filesystem staging area that is not shared, its staged file are. Glance writes the first.
STAGE_HOST = "os_glance_stage_host"
UPLOAD_HOST = "os_glance_upload_host"
logger = logging.getLogger(__name__)


def upload(
    image: Image, body: Readable, *, announced_size: int | None, store: ImageStore
) -> WrittenData:
    """Stream ``body`` into ``store`` and activate the image; on failure it is ``queued`` again
    with no bytes left anywhere."""
    # Checks before the image changes: Glance's on the stored total with the announced size,
    # then the size cap and whether the announced size still fits beside running writes.
    quotas.enforce(image.owner, IMAGE_SIZE_TOTAL, delta=(announced_size or 0) // MIB)
    if announced_size is not None and announced_size > settings.IMAGE_SIZE_CAP:
        raise image_too_large(announced_size)
    quotas.check_announced(image, ReservationArea.STORE, announced_size)
    if image.is_stale_upload():
        recover_stale_upload(image)
    attempt = new_attempt()
    try:
        with quotas.admitting(image.owner, IMAGE_COUNT_UPLOADING):
            image.begin_saving(attempt)
    except InvalidTransition as error:
        raise GlanceError(409, str(error)) from error
    started = time.monotonic()
    events.emit("image.prepare", image=image, facts={"stores": []})
    try:
        image.set_system_property(UPLOAD_HOST, settings.NODE_NAME)
        if not (image.disk_format and image.container_format):
            raise GlanceError(
                400, "Properties disk_format, container_format must be set prior to saving data."
            )
        url = store.url_for(image.id)
        with quotas.reserved(image, attempt, ReservationArea.STORE, announced_size) as room:
            pending = _write(image, body, announced_size, store, attempt, room)
            activated = pending.commit_if(
                lambda: image.activate_with_data(pending.data, store.id, url, attempt=attempt)
            )
        if not activated:
            raise _lost_write(image)
    except BaseException as error:
        # Whatever went wrong (client gone, limits, format), the image must be uploadable again.
        image.revert_to_queued(attempt=attempt)
        _emit_transfer_failed("image.upload", image, "file", started, error)
        raise
    events.emit(
        "image.upload",
        image=image,
        facts=_transfer_facts("file", started, [store.id], pending.data.size, activated=True),
    )
    return pending.data


def _transfer_facts(
    method: str, started: float, stores: list[str], size: int, **more: object
) -> dict[str, object]:
    seconds = time.monotonic() - started
    return {
        "upload": True,
        "method": method,
        "stores": stores,
        "bytes": size,
        "seconds": seconds,
        **more,
    }


def _emit_transfer_failed(
    action: str, image: Image, method: str, started: float, error: BaseException
) -> None:
    message = getattr(error, "message", None) or str(error) or type(error).__name__
    events.emit(
        action,
        outcome=events.FAILURE,
        image=image,
        detail=f"Failed to upload image data for image {image.id}: {message}",
        facts={"upload": True, "method": method, "seconds": time.monotonic() - started},
    )


def _lost_write(image: Image) -> GlanceError:
    """Why a finished write could not be kept: the image went, or another writer took over."""
    if not Image.objects.filter(pk=image.pk, deleted=False).exists():
        return GlanceError(
            410,
            f"Image {image.id} could not be found after upload. The image may have been deleted "
            "during the upload, cleaning up the chunks uploaded.",
        )
    return GlanceError(
        409,
        f"The upload to image {image.id} was taken over by another upload after this one "
        "stalled; its data was discarded.",
    )


def _write(
    image: Image,
    body: Readable,
    announced_size: int | None,
    store,
    attempt: str,
    room: quotas.Reservation,
) -> PendingWrite:
    plan = write_plan(
        make_room=room.make_room,
        expected_size=announced_size,
        disk_format=image.disk_format,
        container_format=image.container_format,
        inspect=True,
        on_progress=UploadHeartbeat(image, attempt),
    )
    return write_image(store, image.id, attempt, body, plan)


class UploadHeartbeat:
    """Moves ``updated_at`` while bytes flow, so a dead upload can be told from a slow one."""

    def __init__(self, image: Image, attempt: str):
        self.image = image
        self.attempt = attempt
        self.last_beat = time.monotonic()

    def __call__(self, size: int) -> None:
        now = time.monotonic()
        if now - self.last_beat >= HEARTBEAT_SECONDS:
            self.last_beat = now
            # Only our own attempt: a writer taken over must not keep the new one looking alive.
            Image.objects.filter(pk=self.image.pk, write_attempt=self.attempt).update(
                updated_at=timezone.now()
            )


def recover_stale_upload(image: Image) -> None:
    """Put an image whose upload or staging died with its worker back to ``queued``, partial
    bytes gone."""
    # A saving image has no location: whatever its stores hold of it is an unfinished write.
    for store in stores.all_stores().values():
        try:
            store.delete(image.id)
        except GlanceError as error:
            # A store that is down keeps the leftovers until cleanup_stores sweeps them; it
            # must not stop the image from becoming uploadable again.
            logger.warning("Could not clean store %s for image %s: %s", store.id, image.id, error)
    stalled = image.status
    if stalled == ImageStatus.UPLOADING:
        staging.discard_staged(image.id)
    image.revert_to_queued(source=stalled)
    events.emit(
        "image.recover",
        image=image,
        detail=f"The {stalled} image's writer stopped; partial data removed.",
        changes={"status": [stalled, image.status]},
    )


def stage(image: Image, body: Readable, *, announced_size: int | None) -> WrittenData:
    """``PUT /stage``: stream into the staging area, hashing and inspecting on the way.

    Glance computes nothing here; we record size, hashes and the detected format so that an
    import without plugins can move the staged file into its store without reading it again.
    """
    if announced_size is not None and announced_size > settings.IMAGE_SIZE_CAP:
        raise image_too_large(announced_size)
    quotas.enforce(image.owner, IMAGE_STAGE_TOTAL, delta=(announced_size or 0) // MIB)
    quotas.check_announced(image, ReservationArea.STAGING, announced_size)
    if image.is_stale_upload():
        recover_stale_upload(image)
    attempt = new_attempt()
    try:
        with quotas.admitting(image.owner, IMAGE_COUNT_UPLOADING):
            image.claim(ImageStatus.QUEUED, ImageStatus.UPLOADING, attempt)
    except InvalidTransition as error:
        raise GlanceError(409, str(error)) from error
    started = time.monotonic()
    try:
        image.set_system_property(STAGE_HOST, stage_host_url())
        # A queued image owns no staged data: anything left there is an orphan of a failure.
        staging.discard_staged(image.id)
        with quotas.reserved(image, attempt, ReservationArea.STAGING, announced_size) as room:
            plan = write_plan(
                expected_size=announced_size,
                inspect=True,
                judge_format=False,
                on_progress=UploadHeartbeat(image, attempt),
                make_room=room.make_room,
            )
            pending = staging.write_staged(image.id, attempt, body, plan)
            kept = pending.commit_if(lambda: staging.keep_staged(image, attempt, pending.data))
        if not kept:
            raise _lost_write(image)
    except BaseException as error:
        image.revert_to_queued(source=ImageStatus.UPLOADING, attempt=attempt)
        _emit_transfer_failed("image.stage", image, "stage", started, error)
        raise
    events.emit(
        "image.stage",
        image=image,
        facts=_transfer_facts("stage", started, ["staging"], pending.data.size),
    )
    return pending.data


def stage_host_url() -> str:
    """This node's URL as Glance records it: ``worker_self_reference_url``, else one made of
    the node's name (``<host>:<port>`` under ``serve``)."""
    return settings.WORKER_SELF_REFERENCE_URL or f"http://{settings.NODE_NAME}"


def delete_data(image: Image, *, unfinished_writes: bool = False) -> None:
    """Remove the image's bytes from every store that holds them, and from staging; with
    ``unfinished_writes`` also what an upload or import (live, or dead with its worker) has
    written so far into any store, which no location names yet."""
    known = stores.all_stores()
    holding = {loc.store for loc in image.locations.all() if loc.store in known}
    # Every store is asked first: one that refuses (an RBD snapshot with clones) must not find
    # the other copies already gone when the delete is refused and the image stays active.
    for store_id in sorted(holding):
        known[store_id].check_deletable(image.id)
    for store in known.values():
        if store.id in holding:
            store.delete(image.id)
        elif unfinished_writes:
            try:
                store.delete(image.id)
            except GlanceError as error:
                # cleanup_stores sweeps it later; the image is deleted all the same.
                logger.warning(
                    "Could not clean store %s for image %s: %s", store.id, image.id, error
                )
    image.locations.all().delete()
    staging.discard_staged(image.id)


def delete_from_store(image: Image, store_id: str) -> None:
    """``DELETE /v2/stores/{store_id}/{image_id}`` once its policies passed: the data of an
    active image leaves one of its stores, never the last one."""
    if image.status != ImageStatus.ACTIVE:
        raise GlanceError(
            409, "It's not allowed to remove image data from store if image status is not 'active'"
        )
    locations = list(image.locations.all())
    if len(locations) == 1:
        raise GlanceError(
            403,
            "Cannot delete image data from the only store containing it. Consider deleting the "
            "image instead.",
        )
    if store_id not in {location.store for location in locations}:
        raise GlanceError(404, f"Image {image.id} is not stored in store {store_id}.")
    # Bytes first: a crash in between leaves a location without data, which downloads skip,
    # never data that no location accounts for.
    try:
        stores.all_stores()[store_id].delete(image.id)
    except DataInUse as refusal:
        message = f"The data for Image {image.id} could not be deleted because it is in use"
        raise GlanceError(409, f"{message}: {IN_USE}") from refusal
    image.locations.filter(store=store_id).delete()
    image.touch()
    image.save(update_fields=["updated_at"])
    held = sorted(location.store for location in locations)
    events.emit(
        "image.store.delete",
        image=image,
        detail=f"Data removed from store {store_id}.",
        changes={"stores": [held, [name for name in held if name != store_id]]},
    )


def _counted(chunks: Iterator[bytes], store_id: str) -> Iterator[bytes]:
    """``chunks`` as sent, added to the store's bytes-out counter (also when the client leaves
    early: what was sent counts)."""
    sent = 0
    try:
        for chunk in chunks:
            sent += len(chunk)
            yield chunk
    finally:
        metrics.BYTES_OUT.labels(store=store_id).inc(sent)


def open_data(image: Image, byte_range: ByteRange | None) -> Iterator[bytes] | None:
    """The image's bytes (all, or ``byte_range``) from the first of its stores that has them;
    None when there are none (Glance answers 204, also when a store lost them). A store that
    cannot be reached is skipped while another copy exists, else its 503 is raised."""
    if image.status not in (ImageStatus.ACTIVE, ImageStatus.DEACTIVATED):
        return None
    known = stores.all_stores()
    unavailable = None
    for location in image.locations.all():
        store = known.get(location.store)
        if store is None:
            continue
        try:
            return _counted(store.read(image.id, byte_range), store.id)
        except GlanceError as error:
            if error.status_code != 404:
                unavailable = error
    if unavailable is not None:
        raise unavailable
    return None
