"""The staging area (``NODE_STAGING_URI``): where ``PUT /stage`` and web-download put data,
and the one owner of what is known about staged data (the ``StagedData`` record).

It may be a filesystem shared by several API nodes and workers. A staged file's path is built
only from the image's UUID, and checked to stay under the root, so nothing a caller sends can
point outside it. An import's plugins work in a per-task directory under the same root.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

from django.conf import settings

from images.models import Image, ImageStatus, StagedData
from images.storage.base import Readable, WrittenData
from images.storage.filesystem import FileWrite
from images.storage.inspection import SAFETY_FAILED, Detection
from images.storage.writer import PendingWrite, WritePlan, stream_into
from imageservice.private_files import PRIVATE_DIRECTORY

WORK_DIR_PREFIX = ".work-"


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
    """Create the root; return a problem description when it cannot be used."""
    try:
        root = staging_root()
        root.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIRECTORY)
    except (ValueError, OSError) as error:
        return str(error)
    if not os.access(root, os.W_OK):
        return f"{root} is not writable"
    return None


def write_staged(image_id: str, attempt: str, source: Readable, plan: WritePlan) -> PendingWrite:
    """Stream ``source`` towards the image's staging file as ``attempt``, checked as ``plan``
    says; it becomes the staged data when committed."""
    sink = FileWrite(staging_path_for(image_id), temporary_staging_path_for(image_id, attempt))
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
    """The image's staged data when both its record and its file are there, else None."""
    staged = StagedData.objects.filter(image=image).first()
    if staged is None or not staging_path_for(image.id).exists():
        return None
    return staged


def has_staged_file(image_id: str) -> bool:
    return staging_path_for(image_id).exists()


def discard_staged(image_id: str) -> int:
    """Remove the image's staged data, file and record; return the bytes freed."""
    freed = _remove_staged_files(image_id)
    StagedData.objects.filter(image_id=image_id).delete()
    return freed


@contextlib.contextmanager
def work_directory(task_id: str) -> Iterator[Path]:
    """A scratch directory for one import's plugins, removed when the import ends."""
    path = staging_root() / f"{WORK_DIR_PREFIX}{uuid.UUID(task_id)}"
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
