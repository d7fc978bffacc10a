"""Running an accepted import: source data → plugin chain → stores → active image.

Failure semantics (a deliberate extension of Glance's state table, docs/import.md): a failed
glance-direct import puts the image back to ``uploading`` with its staged data intact, so
``POST /import`` can simply be repeated; web-download goes back to ``queued``; copy-image leaves
the active image as it was. The task always ends with a message a user can act on.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections, transaction
from django.utils import timezone

from images.data import STAGE_HOST
from images.models import (
    FAILED_IMPORT,
    IMPORTING_TO_STORES,
    Image,
    ImageLocation,
    ImageProperty,
    ImageStatus,
    StagedData,
)
from images.storage import staging, stores
from images.storage.base import ChunkReader, ImageStore, Readable, WrittenData
from images.storage.inspection import verdict
from images.storage.writer import PendingWrite, WritePlan, write_file, write_image, write_plan
from imageservice import events
from imageservice.errors import GlanceError
from imageservice.events.context import Actor, acting_as
from imageservice.quotas import services as quotas
from imageservice.quotas.models import ReservationArea
from importplugins.base import ImportContext, ImportPluginError
from importplugins.chain import chain_reads_data, run_chain
from tasks import download_slots
from tasks.cluster import WorkerStopping
from tasks.models import Task, TaskStatus
from tasks.web_download import ImportFetchError, ImportURIRefused, open_import_uri

logger = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 15


class ImportFailed(Exception):
    """A failure with a message for the user."""


class ImportTakenOver(Exception):
    """This run lost the image's import lock (taken for dead, then another import started):
    the image and its stores are no longer this run's to change."""


TAKEN_OVER = (
    "This import was taken over by another one after it stalled; nothing it wrote was kept."
)


def run_import(task_id: str) -> None:
    task = Task.objects.filter(pk=task_id).first()
    if task is None:
        return  # gone
    # The job acts for the caller who asked for the import, under that request's id.
    actor = Actor(
        user_id=task.user_id,
        project_id=task.owner,
        roles=tuple((task.input or {}).get("roles", [])),
        command="run_import",
    )
    with acting_as(actor, task.request_id):
        _claim_and_run(task)


def _claim_and_run(task: Task) -> None:
    if not download_slots.is_web_download(task):
        if task.claim():  # else already run by an earlier delivery of the same job
            _run_claimed(task)
        return
    if not download_slots.take_slot(task):
        return  # waiting for a slot (woken when one frees), or already run
    try:
        _run_claimed(task, beat_also=download_slots.keep_waiting_alive)
    finally:
        download_slots.wake_next()


def _run_claimed(task: Task, beat_also: Callable[[], None] | None = None) -> None:
    image = Image.objects.filter(pk=task.image_id, deleted=False).first()
    if image is None:
        task.finish(TaskStatus.FAILURE, "The image was deleted before its import started.")
        return
    with Heartbeat(task, beat_also):
        try:
            _run(task, image)
        except ImportFailed as failure:
            fail_import(task, image, str(failure))
        except ImportTakenOver:
            task.finish(TaskStatus.FAILURE, TAKEN_OVER)
        except WorkerStopping as stopping:
            # The worker is being stopped (SIGTERM): hand the import back, retryable, at once.
            fail_import(task, image, str(stopping))
        except Exception as error:
            # Reset the image before giving up, or it would stay 'importing' for good.
            logger.exception("Import task %s failed", task.id)
            fail_import(task, image, f"Import failed unexpectedly: {error}")


def _run(task: Task, image: Image) -> None:
    method = task.input["import_req"]["method"]["name"]
    if method == "copy-image":
        _copy_image(task, image)
        return
    source = ImageStatus.UPLOADING if method == "glance-direct" else ImageStatus.QUEUED
    if not image.move(source, ImageStatus.IMPORTING):
        raise ImportFailed(f"The image is no longer {source}; nothing was imported.")
    _check_quotas(image, method)
    # As Glance at flow start: the staged data is the import's now, wherever it was staged.
    ImageProperty.objects.filter(image=image, name=STAGE_HOST).delete()
    # Until the image is active its web-downloaded bytes are counted by this reservation: the
    # image has no size before then.
    area = ReservationArea.STAGING
    with quotas.reserved(image, _attempt(task), area, None, task=task) as room:
        staged = _staged_source(task, image, method, room)
        with staging.work_directory(task.id) as work_dir:
            context = _run_plugins(task, image, method, staged, work_dir)
            _store_and_activate(task, image, method, staged, context)


# --- source data ---------------------------------------------------------------------------


def _staged_source(task: Task, image: Image, method: str, room: quotas.Reservation) -> StagedData:
    if method == "web-download":
        return _download(task, image, room)
    staged = staging.staged_data(image)
    if staged is None:
        raise ImportFailed("No staged data was found for this image; stage it again.")
    return staged


def _download(task: Task, image: Image, room: quotas.Reservation) -> StagedData:
    uri = task.input["import_req"]["method"].get("uri")
    try:
        with open_import_uri(uri) as response:
            plan = _plan(
                task, response.content_length, inspect=True, judge=False, make_room=room.make_room
            )
            pending = staging.write_staged(image.id, _attempt(task), response, plan)
    except (ImportURIRefused, ImportFetchError, OSError) as error:
        raise ImportFailed(f"Downloading {uri} failed: {error}") from error
    except GlanceError as error:
        if isinstance(error.__cause__, ImportFetchError):
            # The writer words a failed read for an upload's client; the source's own words fit.
            reason = str(error.__cause__)
        else:
            reason = error.message or error.extra_detail
        raise ImportFailed(f"Downloading {uri} failed: {reason}") from error
    _keep(task, image, pending)
    return staging.record_staged(image, pending.data)


def _attempt(task: Task) -> str:
    """The write attempt of an import: its task, so a retry never shares partial data."""
    return uuid.UUID(str(task.id)).hex


def _keep(task: Task, image: Image, pending: PendingWrite) -> WrittenData:
    """Commit a write while this task still holds the image's import lock."""
    if not pending.commit_if(lambda: image.holds_import_lock(task.id)):
        raise ImportTakenOver
    return pending.data


def _plan(
    task: Task,
    total: int | None,
    *,
    inspect: bool,
    judge: bool,
    disk_format: str | None = None,
    container_format: str | None = None,
    make_room: Callable[[int], None] | None = None,
) -> WritePlan:
    def progress(done: int) -> None:
        if done - progress.saved >= 16 * 1024 * 1024:
            progress.saved = done
            if not task.record_progress(done, total):
                raise ImportTakenOver

    progress.saved = 0
    return write_plan(
        expected_size=total,
        disk_format=disk_format,
        container_format=container_format,
        inspect=inspect,
        judge_format=judge,
        on_progress=progress,
        make_room=make_room,
    )


# --- plugins and stores ----------------------------------------------------------------------


def _run_plugins(
    task: Task, image: Image, method: str, staged: StagedData, work_dir: Path
) -> ImportContext:
    try:
        reads_data = chain_reads_data(task.input["settings"]["import_plugins"])
        data_path = staging.local_staged_copy(image.id, work_dir, fetch=reads_data)
    except ImportPluginError as error:
        raise ImportFailed(plugin_failure_message(error)) from error
    except GlanceError as error:
        reason = error.message or error.extra_detail
        raise ImportFailed(f"Reading the staged data failed: {reason}") from error
    context = ImportContext(
        image_id=image.id,
        method=method,
        data_path=data_path,
        work_dir=work_dir,
        disk_format=image.disk_format,
        container_format=image.container_format,
        properties={},
        roles=frozenset(task.input.get("roles", [])),
        settings=task.input["settings"],
        virtual_size=staged.virtual_size,
    )
    try:
        run_chain(context)
    except ImportPluginError as error:
        raise ImportFailed(plugin_failure_message(error)) from error
    return context


def plugin_failure_message(error: ImportPluginError) -> str:
    """The task message for a failed plugin: which one (when the chain knows), what went wrong,
    and whether retrying may help."""
    if error.permanent:
        advice = "Retrying will fail again until the cause above is fixed."
    else:
        advice = "This may be temporary: retrying the import may succeed."
    failed = f"Import plugin {error.plugin} failed" if error.plugin else "Import plugin failed"
    return f"{failed}: {error} {advice}"


def _store_and_activate(
    task: Task, image: Image, method: str, staged: StagedData, context: ImportContext
) -> None:
    targets = task.input["backend"]
    known = stores.all_stores()
    first, *others = [known[name] for name in targets]
    image.disk_format = context.disk_format
    # A plugin's output is judged as what it says it is (image_conversion makes it bare).
    image.container_format = context.container_format
    events.emit("image.prepare", image=image, task=task, facts={"method": method})
    if context.data_changed:
        written = _write_file_into(task, image, context.data_path, first)
    else:
        written = _place_staged_into(task, image, staged, first)
    _store_done(image, first.id)
    for store in others:
        _copy_into(task, image, [first], written, store)
        _store_done(image, store.id)
    _activate(task, image, written, [first, *others], context)


def _store_done(image: Image, store_id: str) -> None:
    """Shrink ``os_glance_importing_to_stores`` store by store, as Glance reports progress."""
    remaining = [name for name in image.store_names_in(IMPORTING_TO_STORES) if name != store_id]
    image.set_system_property(IMPORTING_TO_STORES, ",".join(remaining))


def _place_staged_into(
    task: Task, image: Image, staged: StagedData, store: ImageStore
) -> WrittenData:
    """Zero-copy: the staged file becomes the store's data, its staging hashes reused."""
    try:
        judged = verdict(
            staging.staged_detection(staged),
            image.disk_format or "",
            image.container_format or "",
            staged.size,
            require_match=settings.REQUIRE_IMAGE_FORMAT_MATCH,
            require_raw_match=settings.REQUIRE_RAW_FORMAT_MATCH,
        )
    except GlanceError as refusal:
        raise ImportFailed(refusal.extra_detail or str(refusal)) from refusal
    written = WrittenData(
        size=staged.size,
        checksum=staged.checksum,
        os_hash_algo=staged.os_hash_algo,
        os_hash_value=staged.os_hash_value,
        virtual_size=judged.virtual_size,
    )
    attempt = _attempt(task)
    return _keep(
        task,
        image,
        _write(
            lambda: PendingWrite(
                staging.place_staged(store, image.id, attempt, staged.size), written
            )
        ),
    )


def _write_file_into(task: Task, image: Image, path: Path, store: ImageStore) -> WrittenData:
    """The plugins' output, judged against the (maybe converted) disk format."""
    plan = _plan(
        task,
        path.stat().st_size,
        inspect=True,
        judge=True,
        disk_format=image.disk_format,
        container_format=image.container_format,
    )
    return _keep(
        task, image, _write(lambda: write_file(store, image.id, _attempt(task), path, plan))
    )


def _copy_into(
    task: Task, image: Image, sources: list[ImageStore], written: WrittenData, store: ImageStore
) -> WrittenData:
    """Another copy of data already judged and held by each of ``sources`` (``written`` says
    what it is): made inside the backend when the store can copy from one of them (RBD to RBD
    in one cluster), else streamed from the first."""
    for source in sources:
        try:
            sink = store.copy_from(source, image.id, _attempt(task))
        except GlanceError as refusal:
            raise ImportFailed(refusal.message or refusal.extra_detail) from refusal
        if sink is not None:
            return _keep(task, image, PendingWrite(sink, written))
    plan = _plan(task, written.size, inspect=False, judge=False)
    chunks = _chunks_of(sources[0], image.id)
    return _keep(
        task, image, _write(lambda: write_image(store, image.id, _attempt(task), chunks, plan))
    )


def _chunks_of(store: ImageStore, image_id: str) -> Readable:
    return ChunkReader(store.read(image_id))


def _write(write: Callable[[], PendingWrite]) -> PendingWrite:
    try:
        return write()
    except GlanceError as refusal:
        raise ImportFailed(refusal.message or refusal.extra_detail) from refusal


def _activate(
    task: Task,
    image: Image,
    written: WrittenData,
    written_to: list[ImageStore],
    context: ImportContext | None,
) -> None:
    """Make the import visible in one transaction: active (unless copy-image), locations,
    plugin properties, staged data gone, lock released. A client that sees the image active
    finds nothing of the import left; the task's success follows."""
    with transaction.atomic():
        if not image.holds_import_lock(task.id):
            raise ImportTakenOver
        if context is not None and image.status == ImageStatus.IMPORTING:
            _activate_imported(image, written, written_to[0], context)
        for store in written_to:
            ImageLocation.objects.update_or_create(
                image=image, store=store.id, defaults={"url": store.url_for(image.id)}
            )
        for name, value in (context.properties if context else {}).items():
            ImageProperty.objects.update_or_create(
                image=image, name=name, defaults={"value": value}
            )
        if context is not None:
            # The data is in its stores now: the staged copy is no longer the image's. Its
            # bytes go after the commit, so a rollback never loses them, and a node that dies
            # in between leaves them to cleanup_staging (the image is active).
            staging.forget_staged(image.id)
        _release(task, image)
        events.emit(
            "image.upload",
            image=image,
            task=task,
            facts={
                "method": task.import_method(),
                "stores": [store.id for store in written_to],
                "bytes": written.size,
                "activated": image.status == ImageStatus.ACTIVE and context is not None,
            },
        )
    if context is not None:
        staging.remove_staged_data(image.id)
    task.record_progress(written.size, written.size)
    task.finish(TaskStatus.SUCCESS, "", result={"image_id": image.id})


def _activate_imported(
    image: Image, written: WrittenData, first: ImageStore, context: ImportContext
) -> None:
    if not image.activate_with_data(
        written, first.id, first.url_for(image.id), source=ImageStatus.IMPORTING
    ):
        raise ImportFailed("The image was deleted or changed while it was being imported.")
    Image.objects.filter(pk=image.pk).update(
        disk_format=context.disk_format, container_format=context.container_format
    )


# --- copy-image ------------------------------------------------------------------------------


def _check_quotas(image: Image, method: str) -> None:
    # As Glance: checked once the image is marked as importing, so a refusal fails the task
    # (the 202 is already sent) and the image goes back to where the import found it.
    try:
        quotas.check_import(image, method)
    except GlanceError as refusal:
        raise ImportFailed(refusal.message) from refusal


def _copy_image(task: Task, image: Image) -> None:
    _check_quotas(image, "copy-image")
    known = stores.all_stores()
    # In the order the image got them: the first streams when none can be copied in place.
    names = image.locations.order_by("pk").values_list("store", flat=True)
    sources = [known[name] for name in names if name in known]
    if not sources:
        raise ImportFailed("The image has no data to copy.")
    targets = [known[name] for name in task.input["backend"]]
    events.emit("image.prepare", image=image, task=task, facts={"method": "copy-image"})
    written = WrittenData(
        size=image.size,
        checksum=image.checksum,
        os_hash_algo=image.os_hash_algo,
        os_hash_value=image.os_hash_value,
        virtual_size=image.virtual_size,
    )
    for store in targets:
        _copy_into(task, image, sources, written, store)
        _store_done(image, store.id)
    _activate(task, image, written, targets, None)


# --- endings ---------------------------------------------------------------------------------


def _release(task: Task, image: Image) -> None:
    image.set_system_property(IMPORTING_TO_STORES, "")
    image.release_import_lock(task.id)


def fail_import(task: Task, image: Image, message: str) -> None:
    """End an import as failed and put the image back where the user can retry it."""
    if image.import_lock_holder() not in (None, task.id):
        # Taken over: another import owns the image and its stores now; leave them alone.
        task.finish(TaskStatus.FAILURE, message)
        return
    method = task.input["import_req"]["method"]["name"]
    _remove_copies_made(task, image)
    if method == "glance-direct" and staging.has_staged_file(image.id):
        image.move(ImageStatus.IMPORTING, ImageStatus.UPLOADING)
    elif method != "copy-image":
        staging.discard_staged(image.id)
        image.revert_to_queued(source=ImageStatus.IMPORTING)
    failed = set(image.store_names_in(FAILED_IMPORT))
    if stores.multiple_stores():
        failed |= set(task.input["backend"])
    image.set_system_property(FAILED_IMPORT, ",".join(sorted(failed)))
    _release(task, image)
    task.finish(TaskStatus.FAILURE, message)


def _remove_copies_made(task: Task, image: Image) -> None:
    """Store files this run wrote for stores the image does not (yet) have a location in."""
    kept = set(image.locations.values_list("store", flat=True))
    known = stores.all_stores()
    for name in task.input["backend"]:
        if name in known and name not in kept:
            try:
                known[name].delete(image.id)
            except GlanceError as error:
                # A store that cannot be reached must not keep the image from being retried:
                # what this run left there is no live write's, so cleanup_stores sweeps it.
                logger.warning("Import %s left data in store %s: %s", task.id, name, error)


class Heartbeat:
    """Beats the task's heartbeat from a side thread while the import runs, so long plugin
    steps (qemu-img, downloads) are never mistaken for a dead worker."""

    def __init__(self, task: Task, beat_also: Callable[[], None] | None = None):
        self.task = task
        self.beat_also = beat_also
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)

    def __enter__(self) -> Heartbeat:
        if not settings.IMPORT_JOBS_SYNC:
            self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        if self.thread.is_alive():
            self.thread.join()

    def _beat(self) -> None:
        try:
            while not self.stopped.wait(HEARTBEAT_SECONDS):
                Task.objects.filter(pk=self.task.pk, status=TaskStatus.PROCESSING).update(
                    heartbeat_at=timezone.now()
                )
                if self.beat_also is not None:
                    self.beat_also()
        finally:
            close_old_connections()
