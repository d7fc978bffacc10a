"""The write pipeline: one pass over the incoming bytes feeds a store's write, MD5, the
``os_hash_algo`` digest and the format inspector, whatever the store.

Reading the socket, the store write, MD5 and the digest each run on their own thread (hashlib
and file or socket writes release the GIL on large buffers), so an upload moves at the speed of
its slowest stage instead of the sum of all four. At most ``IN_FLIGHT`` chunks are queued, so
memory stays flat whatever the image size. The store write is committed only once every check
passed, and aborted on any failure.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction
from oslo_utils.imageutils import format_inspector

from images.storage.base import CHUNK_SIZE, ImageStore, Readable, StoreWrite, WrittenData
from images.storage.inspection import Detection, detect, verdict
from imageservice.errors import GlanceError

IN_FLIGHT = 8


@dataclass(frozen=True)
class WritePlan:
    """What to check while writing: limits, the announced size and format inspection."""

    hash_algo: str
    byte_limit: int
    limit_error: Callable[[int], GlanceError]
    expected_size: int | None = None
    disk_format: str | None = None
    container_format: str | None = None
    inspect: bool = False
    # Staging records what it detected instead of judging it: disk_format may come later.
    judge_format: bool = True
    require_format_match: bool = True
    require_raw_format_match: bool = False
    on_progress: Callable[[int], None] | None = None
    # Called with the size so far before each chunk is written: raises when a quota has no
    # room for it (``imageservice.quotas.services.Reservation``).
    make_room: Callable[[int], None] | None = None


def image_too_large(size: int) -> GlanceError:
    return GlanceError(413, "The incoming image is too large: The provided image is too large.")


def write_plan(**choices) -> WritePlan:
    """A plan with the site's hash algorithm, size cap and format rule, overridden by
    ``choices`` (any :class:`WritePlan` field)."""
    defaults = {
        "hash_algo": settings.HASHING_ALGORITHM,
        "byte_limit": settings.IMAGE_SIZE_CAP,
        "limit_error": image_too_large,
        "require_format_match": settings.REQUIRE_IMAGE_FORMAT_MATCH,
        "require_raw_format_match": settings.REQUIRE_RAW_FORMAT_MATCH,
    }
    return WritePlan(**{**defaults, **choices})


class _Pipeline:
    """Three single-thread lanes (store write, MD5, digest) fed the same chunks in order."""

    def __init__(self, sink: StoreWrite, hash_algo: str):
        self.sink = sink
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.digest = hashlib.new(hash_algo)
        self.lanes = [ThreadPoolExecutor(max_workers=1) for _ in range(3)]
        self.pending: deque[list[Future]] = deque()

    def feed(self, chunk: bytes) -> None:
        if len(self.pending) >= IN_FLIGHT:
            self._settle(self.pending.popleft())
        self.pending.append(
            [
                self.lanes[0].submit(self.sink.write, chunk),
                self.lanes[1].submit(self.md5.update, chunk),
                self.lanes[2].submit(self.digest.update, chunk),
            ]
        )

    def drain(self) -> None:
        while self.pending:
            self._settle(self.pending.popleft())

    def close(self) -> None:
        for lane in self.lanes:
            lane.shutdown(wait=True, cancel_futures=True)

    @staticmethod
    def _settle(futures: list[Future]) -> None:
        for future in futures:
            future.result()


def _read_body(source: Readable) -> bytes:
    try:
        return source.read(CHUNK_SIZE)
    except Exception as error:
        # Client disconnects and broken chunked framing surface here as server errors.
        raise GlanceError(400, f"Error reading the image data from the request: {error}") from error


def stream_into(sink: StoreWrite, source: Readable, plan: WritePlan) -> WrittenData:
    """Stream ``source`` into ``sink``, checked as ``plan`` says, and leave it ready to commit
    (:func:`commit_if`); abort it (nothing left behind) on any failure."""
    wrapper = format_inspector.InspectWrapper(source) if plan.inspect else None
    reader: Readable = wrapper or source
    pipeline = _Pipeline(sink, plan.hash_algo)
    try:
        size = _pump(reader, pipeline, plan)
        pipeline.drain()
        detection = _detect(wrapper)
        virtual_size = _judge(detection, plan, size)
    except BaseException:
        pipeline.close()
        sink.abort()
        raise
    pipeline.close()
    return WrittenData(
        size=size,
        checksum=pipeline.md5.hexdigest(),
        os_hash_algo=plan.hash_algo,
        os_hash_value=pipeline.digest.hexdigest(),
        virtual_size=virtual_size,
        detection=detection,
    )


def commit_if(sink: StoreWrite, claim: Callable[[], bool]) -> bool:
    """Commit ``sink`` in one transaction with ``claim``, a conditional update saying the image
    is still this writer's; abort it when the claim fails or anything raises.

    The claim's row lock is held until the data is in place, so a writer taken over as dead
    can never put its bytes, or its hashes, over another writer's.
    """
    try:
        with transaction.atomic():
            if not claim():
                sink.abort()
                return False
            sink.commit()
            return True
    except BaseException:
        sink.abort()
        raise


@dataclass(frozen=True)
class PendingWrite:
    """Data written and checked, waiting for :func:`commit_if`."""

    sink: StoreWrite
    data: WrittenData

    def commit_if(self, claim: Callable[[], bool]) -> bool:
        return commit_if(self.sink, claim)


def write_image(
    store: ImageStore, image_id: str, attempt: str, source: Readable, plan: WritePlan
) -> PendingWrite:
    """Stream ``source`` into ``store`` as ``attempt`` at the data of ``image_id``."""
    sink = store.open_write(image_id, attempt, plan.expected_size)
    return PendingWrite(sink, stream_into(sink, source, plan))


def write_file(
    store: ImageStore, image_id: str, attempt: str, path: Path, plan: WritePlan
) -> PendingWrite:
    """``write_image`` with the bytes of the local file ``path``."""
    with open(path, "rb") as handle:
        return write_image(store, image_id, attempt, handle, plan)


def _pump(reader: Readable, pipeline: _Pipeline, plan: WritePlan) -> int:
    size = 0
    while chunk := _read_body(reader):
        size += len(chunk)
        if size > plan.byte_limit:
            raise plan.limit_error(size)
        if plan.make_room is not None:
            plan.make_room(size)
        pipeline.feed(chunk)
        if plan.on_progress is not None:
            plan.on_progress(size)
    if plan.expected_size is not None and size != plan.expected_size:
        raise GlanceError(
            400,
            f"Size of the uploaded data ({size} bytes) does not match the announced size "
            f"({plan.expected_size} bytes).",
        )
    return size


def _detect(wrapper: format_inspector.InspectWrapper | None) -> Detection | None:
    if wrapper is None:
        return None
    wrapper.close()
    return detect(wrapper)


def _judge(detection: Detection | None, plan: WritePlan, size: int) -> int | None:
    if detection is None or not plan.judge_format:
        return None
    judged = verdict(
        detection,
        plan.disk_format or "",
        plan.container_format or "",
        size,
        require_match=plan.require_format_match,
        require_raw_match=plan.require_raw_format_match,
    )
    return judged.virtual_size
