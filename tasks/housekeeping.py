"""Housekeeping: what a dead worker, a deleted image or an expired task leaves behind.

Three sweeps, each behind a management command (``cleanup_staging``, ``purge_tasks``,
``recover_imports``) and scheduled in django-q2 by ``tasks.schedules``:

- ``cleanup_staging`` — Glance's orphan cleanup (internals §7.4), run periodically rather than
  once per start, and extended to reap the leftovers of images that are no longer being staged
  or imported.
- ``purge_tasks`` — soft-deletes expired tasks for everyone (§7.6), not only for the project that
  happens to list them.
- ``recover_imports`` — fails imports whose worker stopped beating and puts their images back
  where the user can retry them.

Each function takes ``dry_run`` and returns a ``Report``: lines to show (with the verbosity they
need) and a summary. Every change is a conditional UPDATE or a re-checked decision, so a sweep
racing a worker, a request or another sweep loses quietly instead of undoing live work.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.utils import timezone

from images.models import IMPORT_LOCK, IMPORTING_TO_STORES, Image, ImageProperty, StagedData
from images.models import ImageStatus as Status
from images.storage import staging
from images.storage.stores import all_stores
from imageservice import events
from imageservice.errors import GlanceError
from tasks import download_slots
from tasks.models import TERMINAL, Task, TaskStatus
from tasks.runner import fail_import

DEFAULT_STAGING_MAX_AGE_HOURS = 24.0
UNFINISHED = (TaskStatus.PENDING, TaskStatus.PROCESSING)


@dataclass
class Report:
    """What a sweep did (or would do): ``(verbosity, text)`` lines and a closing summary."""

    dry_run: bool
    lines: list[tuple[int, str]] = field(default_factory=list)
    summary: str = ""

    def did(self, done: str, would: str) -> None:
        self.lines.append((1, would if self.dry_run else done))

    def note(self, text: str, verbosity: int = 1) -> None:
        self.lines.append((verbosity, text))

    @property
    def verb(self) -> str:
        return "would be" if self.dry_run else "were"

    def write(self, out, verbosity: int) -> None:
        """Print to a command's ``self.stdout``: lines up to ``verbosity``, then the summary."""
        for level, line in self.lines:
            if verbosity >= level:
                out.write(line)
        if verbosity >= 1:
            out.write(self.summary)


# --- tasks ----------------------------------------------------------------------------------


def unfinished_tasks_for(image_id: str) -> list[Task]:
    return list(Task.objects.filter(image_id=image_id, deleted=False, status__in=UNFINISHED))


def has_live_task(image_id: str) -> bool:
    """A task still running (or queued) with a beating heartbeat: its files are in use."""
    return any(not task.is_stale() for task in unfinished_tasks_for(image_id))


def purge_tasks(*, dry_run: bool = False) -> Report:
    """Soft-delete every expired task (``expires_at`` passed), whoever owns it."""
    report = Report(dry_run)
    purged = 0
    for task in Task.objects.expired().order_by("expires_at", "id"):
        now = timezone.now()
        if not dry_run and not Task.objects.filter(pk=task.pk, deleted=False).update(
            deleted=True, deleted_at=now
        ):
            continue  # soft-deleted meanwhile by a listing or another sweep
        if not dry_run:
            events.emit("task.delete", task=task, detail="Expired task purged.")
        purged += 1
        expired = task.expires_at.isoformat(timespec="seconds")
        report.did(
            f"Purged task {task.id} ({task.status}, expired {expired})",
            f"Would purge task {task.id} ({task.status}, expired {expired})",
        )
    report.summary = f"{purged} expired task(s) {report.verb} soft-deleted."
    return report


# --- recovering imports -------------------------------------------------------------------


def recover_imports(*, dry_run: bool = False) -> Report:
    """Fail stale imports, reset images stuck in ``importing``, drop locks nobody holds.

    A task is stale when its worker stopped beating (``Task.is_stale()``): killed, or its
    queue message lost. Glance leaves such an image ``importing`` until a new import breaks the
    lock, which cannot happen because ``importing`` accepts no import; here the image goes
    back to ``uploading`` (staged data kept) or ``queued`` so ``POST /import`` can be repeated.
    """
    report = Report(dry_run)
    handled: set[str] = set()
    failed = _fail_stale_tasks(report, handled)
    reset = _reset_stuck_images(report, handled)
    unlocked = _remove_stale_locks(report)
    report.summary = (
        f"{failed} stale import task(s) {report.verb} failed, {reset} image(s) stuck in "
        f"importing {report.verb} reset, {unlocked} stale import lock(s) {report.verb} removed."
    )
    return report


def stale_import_message(seconds: int) -> str:
    return (
        f"The worker running this import stopped (no heartbeat for {seconds} s); "
        "the import can be retried."
    )


def _fail_stale_tasks(report: Report, handled: set[str]) -> int:
    count = 0
    tasks = Task.objects.filter(deleted=False, status__in=UNFINISHED).order_by("created_at", "id")
    for task in tasks:
        if not task.is_stale():
            continue
        if task.status == TaskStatus.PENDING and task.message == download_slots.WAITING:
            # Only waiting for a web-download slot, and whoever should have woken it is gone.
            label = f"waiting web-download task {task.id} of image {task.image_id}"
            report.did(f"Re-enqueued {label}", f"Would re-enqueue {label}")
            if not report.dry_run:
                download_slots.wake(task)
            continue
        silent_since = task.heartbeat_at or task.updated_at
        seconds = int((timezone.now() - silent_since).total_seconds())
        if not report.dry_run and not _claim_for_recovery(task):
            continue  # it beat, finished, or another sweep took it since we read it
        count += 1
        handled.add(task.image_id or "")
        label = f"stale task {task.id} of image {task.image_id} (no heartbeat for {seconds} s)"
        report.did(f"Failed {label}", f"Would fail {label}")
        if not report.dry_run:
            _end_stale_task(task, seconds)
    return count


def _claim_for_recovery(task: Task) -> bool:
    """Only one sweep recovers a task: the one whose UPDATE still sees the row it judged.

    Without this, a second sweep holding an old list could fail a task again after the user
    started a new import, and ``fail_import`` would then revert the new import's image.
    """
    return bool(
        Task.objects.filter(
            pk=task.pk,
            status=task.status,
            heartbeat_at=task.heartbeat_at,
            updated_at=task.updated_at,
        ).update(updated_at=timezone.now())
    )


def _end_stale_task(task: Task, seconds: int) -> None:
    image = Image.objects.filter(pk=task.image_id, deleted=False).first()
    method = ((task.input or {}).get("import_req") or {}).get("method") or {}
    if image is None:
        task.finish(
            TaskStatus.FAILURE,
            f"The worker running this import stopped (no heartbeat for {seconds} s); "
            "the image has since been deleted.",
        )
    elif not method.get("name"):
        task.finish(TaskStatus.FAILURE, stale_import_message(seconds))
    else:
        fail_import(task, image, stale_import_message(seconds))


def _reset_stuck_images(report: Report, handled: set[str]) -> int:
    count = 0
    for image in Image.objects.alive().filter(status=Status.IMPORTING).order_by("created_at"):
        if image.id in handled or has_live_task(image.id):
            continue
        has_staged = staging.staged_data(image) is not None
        target = Status.UPLOADING if has_staged else Status.QUEUED
        if not report.dry_run:
            if not _reset_image(image, has_staged):
                continue
            events.emit(
                "image.recover",
                image=image,
                detail="No live import task: the image can be imported again.",
                changes={"status": [Status.IMPORTING, target]},
            )
        count += 1
        label = f"image {image.id} from importing to {target} (no live import task)"
        report.did(f"Reset {label}", f"Would reset {label}")
    return count


def _reset_image(image: Image, has_staged: bool) -> bool:
    if has_staged:
        return image.move(Status.IMPORTING, Status.UPLOADING)
    image.revert_to_queued(source=Status.IMPORTING)
    if image.status != Status.QUEUED:
        return False  # moved meanwhile: its files are no longer ours to judge
    # A queued image owns no staged data (as in fail_import for web-download).
    staging.discard_staged(image.id)
    return True


def _remove_stale_locks(report: Report) -> int:
    count = 0
    locks = ImageProperty.objects.filter(name=IMPORT_LOCK, image__deleted=False).select_related(
        "image"
    )
    for lock in locks.order_by("image_id"):
        holder = Task.objects.filter(pk=lock.value).first()
        if holder is not None and holder.status not in TERMINAL:
            continue  # live, or stale and recovered by _fail_stale_tasks (which releases it)
        why = "missing" if holder is None else f"finished ({holder.status})"
        if not report.dry_run:
            if not lock.image.release_import_lock(lock.value):
                continue  # taken over meanwhile
            lock.image.set_system_property(IMPORTING_TO_STORES, "")
            events.emit(
                "image.unlock",
                image=lock.image,
                detail=f"Stale import lock removed (task {lock.value} is {why}).",
            )
        count += 1
        label = f"stale import lock on image {lock.image_id} (task {lock.value} is {why})"
        report.did(f"Removed {label}", f"Would remove {label}")
    return count


# --- staging cleanup ------------------------------------------------------------------------


def cleanup_staging(
    *, dry_run: bool = False, older_than_hours: float = DEFAULT_STAGING_MAX_AGE_HOURS
) -> Report:
    """Remove staging files that no upload or import will use again.

    An entry belongs to an image (``<id>``, ``.<id>.partial``, ``<id>.<format>``) or to a task
    (``.work-<task id>``); anything else is ignored, as by Glance. Removed: entries of gone or
    deleted images, of images no longer ``uploading``/``importing``, of finished or gone tasks,
    and entries older than ``older_than_hours`` that no live task uses. Never removed: entries of
    an image with a live task, of an ``uploading`` image with staged data and no stale task (it
    waits for ``POST /import``), or of an upload still beating. Finally deletes ``StagedData``
    rows whose staged file is gone.

    With the staging area in an object store, its committed objects are judged the same way,
    what unfinished staging writes left there is swept, and the work directories judged are
    this node's (``DATA_DIR/import-work``): each node runs it for its own.
    """
    report = Report(dry_run)
    limit = timezone.now() - timedelta(hours=older_than_hours)
    age = f"no live task and unchanged for over {older_than_hours:g} h"
    store = staging.staging_store()
    if store is None:
        removed, freed, emptied = _clean_directory(staging.staging_root(), report, limit, age)
    else:
        removed, freed, emptied = _clean_staging_store(store, report, limit, age)
        # This node's work directories (each node has its own under DATA_DIR).
        work = _clean_directory(staging.work_root(), report, limit, age)
        removed, freed = removed + work[0], freed + work[1]
    records = _delete_orphan_staged_data(report, emptied)
    report.summary = (
        f"{removed} staging file(s) {report.verb} removed, {freed} bytes {report.verb} freed; "
        f"{records} staged-data record(s) without a file {report.verb} deleted."
    )
    return report


def _clean_directory(
    root: Path, report: Report, limit: datetime, age: str
) -> tuple[int, int, set[str]]:
    removed, freed, emptied = 0, 0, set()
    entries = sorted(root.iterdir()) if root.is_dir() else []
    for entry in entries:
        if not is_direct_child(root, entry):
            report.note(f"Skipped {entry.name}: not a direct child of the staging root")
            continue
        decision = _judge_entry(entry, limit, age)
        if decision is None:
            report.note(f"Ignored {entry.name}: not a staging file of an image or task", 2)
            continue
        remove, reason, image_id = decision
        if not remove:
            report.note(f"Kept {entry.name}: {reason}", 2)
            continue
        size = _size_of(entry)
        if not report.dry_run and not _remove(root, entry):
            report.note(f"Skipped {entry.name}: it could not be removed")
            continue
        removed, freed = removed + 1, freed + size
        if image_id and entry.name == image_id:
            emptied.add(image_id)
        if not report.dry_run:
            _emit_staging_removed(entry.name, size, reason, image_id)
        report.did(
            f"Removed {entry.name} ({size} bytes): {reason}",
            f"Would remove {entry.name} ({size} bytes): {reason}",
        )
    return removed, freed, emptied


def _clean_staging_store(
    store, report: Report, limit: datetime, age: str
) -> tuple[int, int, set[str]]:
    """The same judgement for the staged objects of an object store; then what unfinished
    staging writes left there (segments, multipart uploads) goes as in ``cleanup_stores``."""
    removed, freed, emptied = 0, 0, set()
    try:
        listing = store.listing()
    except GlanceError as error:
        report.note(f"Skipped the staging store: {error.message or error.extra_detail}")
        return removed, freed, emptied
    for data in listing:
        remove, reason = _judge_image_file(data.image_id, data.modified < limit, age)
        if not remove:
            report.note(f"Kept staged {data.image_id}: {reason}", 2)
            continue
        if not report.dry_run:
            try:
                store.delete(data.image_id)
            except GlanceError as error:
                reason = error.message or error.extra_detail
                report.note(f"Skipped staged {data.image_id}: {reason}")
                continue
        removed, freed = removed + 1, freed + data.size
        emptied.add(data.image_id)
        if not report.dry_run:
            _emit_staging_removed(f"staged {data.image_id}", data.size, reason, data.image_id)
        report.did(
            f"Removed staged {data.image_id} ({data.size} bytes): {reason}",
            f"Would remove staged {data.image_id} ({data.size} bytes): {reason}",
        )
    removed += _sweep_store(store, report)
    return removed, freed, emptied


def _emit_staging_removed(name: str, size: int, reason: str, image_id: str | None) -> None:
    events.emit(
        "image.staging.cleanup",
        image_id=image_id,
        detail=f"Removed staging entry {name} ({size} bytes): {reason}",
    )


def is_direct_child(root: Path, path: Path) -> bool:
    """True for a real entry of the staging root itself: no symlink, nothing below or above."""
    return (
        not path.is_symlink()
        and path.parent.resolve() == root.resolve()
        and path.resolve().parent == root.resolve()
    )


def _judge_entry(entry: Path, limit: datetime, age: str) -> tuple[bool, str, str | None] | None:
    """``(remove, reason, image id)`` for an entry, or None when it is not ours to judge."""
    old = datetime.fromtimestamp(entry.lstat().st_mtime, tz=UTC) < limit
    if entry.name.startswith(staging.WORK_DIR_PREFIX):
        task_id = entry.name.removeprefix(staging.WORK_DIR_PREFIX)
        if not entry.is_dir() or not _is_uuid(task_id):
            return None
        return (*_judge_work_dir(task_id, old, age), None)
    image_id = entry.name.removeprefix(".").split(".", 1)[0]
    if not entry.is_file() or not _is_uuid(image_id):
        return None
    return (*_judge_image_file(image_id, old, age), image_id)


def _judge_work_dir(task_id: str, old: bool, age: str) -> tuple[bool, str]:
    task = Task.objects.filter(pk=task_id).first()
    if task is None:
        return True, "task gone"
    if task.status in TERMINAL:
        return True, f"task finished ({task.status})"
    if not task.is_stale():
        return False, "import in progress"
    return (True, age) if old else (False, "stale task, newer than the age limit")


def _judge_image_file(image_id: str, old: bool, age: str) -> tuple[bool, str]:
    image = Image.objects.filter(pk=image_id).first()
    if image is None:
        return True, "image gone"
    if image.deleted:
        return True, "image deleted"
    tasks = unfinished_tasks_for(image_id)
    if any(not task.is_stale() for task in tasks):
        return False, "import in progress"
    if image.status not in (Status.UPLOADING, Status.IMPORTING):
        return True, f"image is {image.status}"
    if image.status == Status.UPLOADING:
        if StagedData.objects.filter(image=image).exists():
            if not tasks:
                return False, "staged data waiting for its import"
        elif not image.is_stale_upload():
            return False, "upload in progress"
    return (True, age) if old else (False, "newer than the age limit")


def _delete_orphan_staged_data(report: Report, emptied: set[str]) -> int:
    count = 0
    for staged in StagedData.objects.order_by("image_id"):
        image_id = staged.image_id
        gone = image_id in emptied or not staging.has_staged_file(image_id)
        if not gone or has_live_task(image_id):
            continue
        if not report.dry_run:
            StagedData.objects.filter(pk=image_id).delete()
            events.emit(
                "image.staging.discard",
                image=staged.image,
                detail="Staged-data record deleted: its staged file is gone.",
            )
        count += 1
        report.did(
            f"Deleted the staged-data record of image {image_id}: its staged file is gone",
            f"Would delete the staged-data record of image {image_id}: its staged file is gone",
        )
    return count


def _size_of(entry: Path) -> int:
    if not entry.is_dir():
        return entry.lstat().st_size
    total = 0
    for folder, _, files in os.walk(entry):
        for name in files:
            total += (Path(folder) / name).lstat().st_size
    return total


def _remove(root: Path, entry: Path) -> bool:
    # Checked again right before deleting: the decision must never reach outside the root.
    if not is_direct_child(root, entry):
        return False
    try:
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    except FileNotFoundError:
        return True  # removed meanwhile by its own worker: nothing left to free
    except OSError:
        return False
    return True


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


# --- store leftovers -----------------------------------------------------------------------


def write_is_live(image_id: str, attempt: str) -> bool:
    """Whether write ``attempt`` of ``image_id`` may still commit: the image's own upload or
    staging while it beats, or an import task still running. ``attempt=""`` (a store that
    cannot tell attempts apart): any such write of the image."""
    image = Image.objects.filter(pk=image_id, deleted=False).first()
    if image is None:
        return False
    writing = image.status in (Status.SAVING, Status.UPLOADING) and not image.is_stale_upload()
    if writing and attempt in ("", image.write_attempt):
        return True
    live_tasks = [task for task in unfinished_tasks_for(image_id) if not task.is_stale()]
    return any(attempt in ("", uuid.UUID(str(task.id)).hex) for task in live_tasks)


def cleanup_stores(*, dry_run: bool = False) -> Report:
    """Remove from every store what writes that can no longer commit left behind (a killed
    process, a store that was down when a failed write tried to clean up)."""
    report = Report(dry_run)
    swept = [*all_stores().values(), *filter(None, [staging.staging_store()])]
    total = sum(_sweep_store(store, report) for store in swept)
    report.summary = f"{total} leftover(s) of unfinished writes {report.verb} removed."
    return report


def _sweep_store(store, report: Report) -> int:
    dead: list[str] = []

    def judge(image_id: str, attempt: str) -> bool:
        live = write_is_live(image_id, attempt)
        if not live:
            dead.append(f"image {image_id} attempt {attempt or '(any)'}")
        return live or report.dry_run  # a dry run removes nothing

    try:
        removed = store.sweep(judge)
    except GlanceError as error:
        report.note(f"Skipped store {store.id}: {error.message or error.extra_detail}")
        return 0
    if report.dry_run:
        for write in dict.fromkeys(dead):
            report.note(f"Would remove the leftovers of {write} from store {store.id}")
        return len(set(dead))
    for name in removed:
        report.note(f"Removed {name} from store {store.id}")
    return len(removed)
