"""The staging area: where ``PUT /stage`` and web-download put data, and the one owner of what
is known about staged data (the ``StagedData`` record).

Two kinds, chosen by ``[os_glance_staging_store] store_type`` (``STAGING_STORE_TYPE``):

- ``file`` (the default): a directory, ``NODE_STAGING_URI``, which several API nodes and
  workers must share. A staged file's path is built only from the image's UUID, and checked to
  stay under the root, so nothing a caller sends can point outside it. An import's plugins work
  in a per-task directory under the same root.
- ``swift`` or ``s3``: a store of that type built from the section's glance_store options (its
  own container or bucket), so a node that stages and the worker that imports share nothing on
  local disk. The staged data is the image's object there, written and read through the store
  contract; an import whose target store the staging store can copy into on the server's side
  (the same account or endpoint) copies it there without reading it. Plugins that read the
  data get a local copy in a per-task directory under ``DATA_DIR/import-work``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

from django.conf import settings

from images.models import Image, ImageStatus, StagedData
from images.storage.base import (
    ImageStore,
    Readable,
    StoreWrite,
    WrittenData,
    copy_data,
)
from images.storage.filesystem import FileWrite
from images.storage.inspection import SAFETY_FAILED, Detection
from images.storage.stores import COMMON_OPTIONS, all_stores, build_store, driver_for
from images.storage.writer import PendingWrite, WritePlan, stream_into
from imageservice.errors import GlanceError
from imageservice.private_files import PRIVATE_DIRECTORY

logger = logging.getLogger(__name__)

WORK_DIR_PREFIX = ".work-"
# The name of the staging store in messages ("Store os_glance_staging_store is not available").
STAGING_STORE_ID = "os_glance_staging_store"
OBJECT_STORE_TYPES = frozenset({"swift", "s3"})
LOCAL_COPY_NAME = "staged"


def staging_store() -> ImageStore | None:
    """The object store holding staged data, or None for a staging directory."""
    if settings.STAGING_STORE_TYPE == "file":
        return None
    key = json.dumps([settings.STAGING_STORE_TYPE, settings.STAGING_STORE_OPTIONS], sort_keys=True)
    if key not in _built:
        _built.clear()
        options = {**settings.STAGING_STORE_OPTIONS, "type": settings.STAGING_STORE_TYPE}
        if settings.STAGING_STORE_TYPE not in OBJECT_STORE_TYPES:
            options["type"] = f"{settings.STAGING_STORE_TYPE} (staging takes file, swift or s3)"
        _built[key] = build_store(STAGING_STORE_ID, options)
    return _built[key]


_built: dict[str, ImageStore] = {}
# As the image stores (images.storage.stores): a forked process must not share the staging
# store's connections with its parent.
os.register_at_fork(after_in_child=_built.clear)


def unknown_staging_options() -> list[str]:
    """Options of ``[os_glance_staging_store]`` its store type does not read (typos)."""
    driver = driver_for(settings.STAGING_STORE_TYPE)
    if settings.STAGING_STORE_TYPE not in OBJECT_STORE_TYPES or driver is None:
        return []
    return sorted(settings.STAGING_STORE_OPTIONS.keys() - (COMMON_OPTIONS | driver.OPTIONS))


def work_root() -> Path:
    """Where imports' per-task directories go: the staging directory, or this node's
    ``DATA_DIR/import-work`` when staging is in an object store."""
    if staging_store() is None:
        return staging_root()
    return Path(settings.DATA_DIR) / "import-work"


def staging_root() -> Path:
    parsed = urlparse(settings.NODE_STAGING_URI)
    if parsed.scheme != "file" or not parsed.path:
        raise ValueError(f"NODE_STAGING_URI must be a file:// URI, got {settings.NODE_STAGING_URI}")
    return Path(parsed.path)


def staging_path_for(image_id: str) -> Path:
    canonical = str(uuid.UUID(image_id))  # refuses anything that is not a UUID
    root = staging_root().resolve()
    path = (root / canonical).resolve()
    if path.parent != root:
        raise ValueError(f"Staging path for {image_id} escapes the staging root")
    return path


def temporary_staging_path_for(image_id: str, attempt: str) -> Path:
    path = staging_path_for(image_id)
    return path.with_name(f".{path.name}.{uuid.UUID(attempt).hex}.partial")


def ensure_staging_root() -> str | None:
    """Create the root (or the object store's container or bucket, and the local work root);
    return a problem description when it cannot be used."""
    store = staging_store()
    if store is not None:
        return _staging_store_problem(store)
    try:
        root = staging_root()
        root.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIRECTORY)
    except (ValueError, OSError) as error:
        return str(error)
    if not os.access(root, os.W_OK):
        return f"{root} is not writable"
    return None


def _staging_store_problem(store: ImageStore) -> str | None:
    problem = store.prepare()
    if problem is not None:
        return problem
    for other in all_stores().values():
        if type(other) is type(store) and _same_place(store, other):
            # Both name an image's object by its UUID: an import would delete its own data.
            return f"it is the container or bucket of store {other.id}: give staging its own"
    try:
        work_root().mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return f"the local work directory: {error}"
    return None


def _same_place(store: ImageStore, other: ImageStore) -> bool:
    place = getattr(store, "container", None) or getattr(store, "bucket", None)
    other_place = getattr(other, "container", None) or getattr(other, "bucket", None)
    return place == other_place and store.same_account(other)


def write_staged(image_id: str, attempt: str, source: Readable, plan: WritePlan) -> PendingWrite:
    """Stream ``source`` towards the image's staged data as ``attempt``, checked as ``plan``
    says; it becomes the staged data when committed."""
    store = staging_store()
    if store is None:
        sink: StoreWrite = FileWrite(
            staging_path_for(image_id), temporary_staging_path_for(image_id, attempt)
        )
    else:
        sink = store.open_write(str(uuid.UUID(image_id)), attempt)
    return PendingWrite(sink, stream_into(sink, source, plan))


def keep_staged(image: Image, attempt: str, written: WrittenData) -> bool:
    """The claim under which ``PUT /stage`` commits: the image is still ``uploading`` by
    ``attempt``; then record what the write learned. False when another attempt took over."""
    claimed = Image.objects.filter(
        pk=image.pk, status=ImageStatus.UPLOADING, write_attempt=attempt, deleted=False
    ).update(size=written.size, write_attempt="")
    if not claimed:
        return False
    image.size = written.size
    record_staged(image, written)
    return True


def record_staged(image: Image, written: WrittenData) -> StagedData:
    """Keep what the staging write learned, for the import to reuse without reading again."""
    detection = written.detection or Detection()
    staged, _ = StagedData.objects.update_or_create(
        image=image,
        defaults={
            "size": written.size,
            "checksum": written.checksum,
            "os_hash_algo": written.os_hash_algo,
            "os_hash_value": written.os_hash_value,
            "detected_format": detection.name,
            "virtual_size": detection.virtual_size,
            # A safety failure refuses whatever the settings, so it wins over an ambiguity.
            "format_problem": detection.safety_problem or detection.ambiguity,
        },
    )
    return staged


def staged_detection(staged: StagedData) -> Detection:
    """What the inspector saw while the data was staged, to judge it without reading again."""
    problem = staged.format_problem
    unsafe = problem.startswith(SAFETY_FAILED)
    return Detection(
        name=staged.detected_format,
        virtual_size=staged.virtual_size,
        ambiguity=problem if not unsafe else "",
        safety_problem=problem if unsafe else "",
    )


def staged_data(image: Image) -> StagedData | None:
    """The image's staged data when both its record and its data are there, else None."""
    staged = StagedData.objects.filter(image=image).first()
    if staged is None or not has_staged_file(image.id):
        return None
    return staged


def has_staged_file(image_id: str) -> bool:
    """Whether the image's staged data is there. An object store that cannot be asked counts
    as holding it: the image stays retryable, and nothing is discarded on a guess."""
    store = staging_store()
    if store is None:
        return staging_path_for(image_id).exists()
    try:
        return store.has_data(str(uuid.UUID(image_id)))
    except GlanceError as error:
        logger.warning("Staged data of %s: %s", image_id, error.message or error.extra_detail)
        return True


def discard_staged(image_id: str) -> int:
    """Remove the image's staged data and record; return the bytes freed. What an object
    store that is down keeps is left for ``cleanup_staging``."""
    freed = remove_staged_data(image_id)
    forget_staged(image_id)
    return freed


def forget_staged(image_id: str) -> None:
    """Drop the record alone (an import that made it the image's data, in its transaction;
    :func:`remove_staged_data` follows)."""
    StagedData.objects.filter(image_id=image_id).delete()


def remove_staged_data(image_id: str) -> int:
    """Remove the staged data itself, every attempt's included; the bytes freed (as recorded,
    for an object store)."""
    store = staging_store()
    if store is None:
        return _remove_staged_files(image_id)
    recorded = StagedData.objects.filter(image_id=image_id).values_list("size", flat=True).first()
    try:
        store.delete(str(uuid.UUID(image_id)))
    except GlanceError as error:
        logger.warning(
            "Staged data of %s left for cleanup_staging: %s",
            image_id,
            error.message or error.extra_detail,
        )
        return 0
    return recorded or 0


def local_staged_copy(image_id: str, work_dir: Path, *, fetch: bool) -> Path:
    """The staged data as a local file, for the import's plugins: the staged file itself, or
    (object store) ``work_dir/staged``, downloaded there only when ``fetch`` says a plugin
    reads it."""
    store = staging_store()
    if store is None:
        return staging_path_for(image_id)
    path = work_dir / LOCAL_COPY_NAME
    if fetch:
        sink = FileWrite(path, work_dir / f".{LOCAL_COPY_NAME}.partial")
        try:
            for chunk in store.read(str(uuid.UUID(image_id))):
                sink.write(chunk)
        except BaseException:
            sink.abort()
            raise
        sink.commit()
    return path


def place_staged(store: ImageStore, image_id: str, attempt: str, size: int) -> StoreWrite:
    """The staged data as ``attempt``'s write into ``store``, ready to commit, never read
    through the hashing pipeline again: a hard link (or file copy) from a staging directory, a
    server-side copy from a staging object store the target can copy from, else streamed."""
    staging = staging_store()
    if staging is None:
        return store.place_file(image_id, staging_path_for(image_id), attempt)
    return copy_data(staging, store, str(uuid.UUID(image_id)), attempt, size)


def clear_local_work() -> None:
    """Remove this node's work directories before its job worker starts (object-store staging:
    they are local, and whatever is there was left by an earlier process, killed mid-import;
    the cluster's scheduled cleanup runs on one node only). A shared staging directory is left
    to ``cleanup_staging``."""
    if staging_store() is None:
        return
    root = work_root()
    for entry in root.glob(f"{WORK_DIR_PREFIX}*") if root.is_dir() else []:
        shutil.rmtree(entry, ignore_errors=True)


@contextlib.contextmanager
def work_directory(task_id: str) -> Iterator[Path]:
    """A scratch directory for one import's plugins, removed when the import ends."""
    path = work_root() / f"{WORK_DIR_PREFIX}{uuid.UUID(task_id)}"
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIRECTORY)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _remove_staged_files(image_id: str) -> int:
    freed = 0
    staged = staging_path_for(image_id)
    # Partial files of every attempt (and the attempt-less name of older versions).
    partials = staged.parent.glob(f".{staged.name}.*partial")
    for path in (staged, *partials):
        try:
            freed += path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            continue
    return freed
