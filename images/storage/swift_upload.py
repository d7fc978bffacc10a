"""One write attempt into a Swift store: segments streamed as they arrive, one Static Large
Object manifest on commit.

The writer's thread (the pipeline's store lane) hands chunks over a small bounded feed to an
uploader thread, which streams each segment as one chunked PUT whose body is read from the feed.
So at most ``FEED_CHUNKS`` chunks wait between the two, whatever the segment size, and the
writer blocks while Swift is slower than the client. The uploader has its own connection
(swiftclient connections are not thread-safe); commit and abort run after it ended, or give it
up, and use connections of their own.

Names, all in the store's container: ``<image_id>-<attempt>-writing`` is put when the attempt
opens and removed when it commits or aborts, so that a writer killed in the middle of its first
segment still leaves something ``sweep`` can see; segments are ``<image_id>-<attempt>-00001``
onwards; only when more segments than one manifest may hold were written, sub-manifests
``<image_id>-<attempt>-manifest-00001`` onwards group them.
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from swiftclient import Connection

from images.storage.base import StoreWrite
from imageservice.errors import GlanceError

if TYPE_CHECKING:
    from images.storage.swift import SwiftStore

# Chunks waiting between the writer and the uploader (the pipeline writes ~1 MiB chunks).
FEED_CHUNKS = 4
# Swift's default slo max_manifest_segments: more segments go through sub-manifests.
MANIFEST_SEGMENTS = 1000
# The uploader gives up when no bytes came for this long: Swift's proxy drops a PUT whose
# client is silent for its client_timeout (60 s by default) anyway, and an abandoned write must
# not keep a thread and a request open for ever.
IDLE_SECONDS = 60.0

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
# What a write attempt names: never a Glance DLO segment (``<image_id>-00001``).
ATTEMPT_OBJECT = re.compile(rf"^(?P<image_id>{_UUID})-(?P<attempt>[0-9a-f]+)-(?P<part>.+)$")
MARKER = "writing"


def marker_name(image_id: str, attempt: str) -> str:
    return f"{image_id}-{attempt}-{MARKER}"


def segment_name(image_id: str, attempt: str, number: int) -> str:
    return f"{image_id}-{attempt}-{number:05d}"


def submanifest_name(image_id: str, attempt: str, number: int) -> str:
    return f"{image_id}-{attempt}-manifest-{number:05d}"


@dataclass(frozen=True)
class Segment:
    name: str
    etag: str | None
    size: int


class _Stopped(Exception):
    """The feed was stopped: the attempt is being aborted or the uploader failed."""


class _EndOfSegment:
    pass


class _Finished:
    pass


END_OF_SEGMENT = _EndOfSegment()
FINISHED = _Finished()


class Feed:
    """A bounded hand-over from one producer thread to one consumer thread."""

    def __init__(self, limit: int):
        self.items: deque[object] = deque()
        self.limit = limit
        self.stopped = False
        self.changed = threading.Condition()

    def put(self, item: object) -> bool:
        """Queue ``item``, waiting for room; False (and dropped) once the feed is stopped."""
        with self.changed:
            self.changed.wait_for(lambda: len(self.items) < self.limit or self.stopped)
            if self.stopped:
                return False
            self.items.append(item)
            self.changed.notify_all()
            return True

    def get(self, timeout: float) -> object:
        with self.changed:
            if not self.changed.wait_for(lambda: self.items or self.stopped, timeout):
                raise GlanceError(
                    400, f"Error reading the image data: none arrived for {timeout:g} seconds."
                )
            if self.stopped:
                raise _Stopped
            item = self.items.popleft()
            self.changed.notify_all()
            return item

    def stop(self) -> None:
        with self.changed:
            self.stopped = True
            self.items.clear()
            self.changed.notify_all()


class SegmentedWrite(StoreWrite):
    """An attempt's data as SLO segments, committed by one manifest PUT at ``<image_id>``."""

    def __init__(self, store: SwiftStore, image_id: str, attempt: str):
        self.store = store
        self.image_id = image_id
        self.attempt = attempt
        self.feed = Feed(FEED_CHUNKS)
        self.uploaded: list[Segment] = []
        self.error: BaseException | None = None
        self.segment_number = 0  # the segment being handed over, 0 before the first byte
        self.in_segment = 0
        self.finished = False
        self.committed = False
        store.put_marker(marker_name(image_id, attempt))
        self.uploader = threading.Thread(
            target=self._upload, name=f"swift-upload-{attempt[:8]}", daemon=True
        )
        self.uploader.start()

    # --- the writer's side ---------------------------------------------------------------

    def write(self, chunk: bytes) -> None:
        while chunk:
            if self.segment_number == 0 or self.in_segment == self._capacity():
                if self.segment_number:
                    self._hand(END_OF_SEGMENT)
                self.segment_number += 1
                self.in_segment = 0
            room = self._capacity() - self.in_segment
            part, chunk = (chunk, b"") if len(chunk) <= room else (chunk[:room], chunk[room:])
            self._hand(part)
            self.in_segment += len(part)

    def finish(self) -> None:
        """Wait until every byte written so far is in Swift; raise what the uploader met."""
        if not self.finished:
            if self.segment_number:
                self._hand(END_OF_SEGMENT)
            self._hand(FINISHED)
            self.finished = True
        # Every request of the uploader has a timeout and its feed an idle limit: it ends.
        self.uploader.join()
        if self.error is not None:
            raise self.error

    def commit(self) -> None:
        self.finish()
        segments = self.uploaded or [self.store.put_empty_segment(self.image_id, self.attempt)]
        self.store.put_manifest(
            self.image_id, joined(self.store, self.image_id, self.attempt, segments)
        )
        self.committed = True
        self.store.remove_quietly([marker_name(self.image_id, self.attempt)])

    def abort(self) -> None:
        if self.committed:
            return  # the segments are the image's data now (commit_if may abort after commit)
        self.feed.stop()
        # A segment PUT that is sending gives up at its next chunk (the feed raises) or at its
        # socket timeout; one still running after that is left for sweep.
        self.uploader.join(self.store.request_timeout)
        names = [segment.name for segment in list(self.uploaded)]
        self.store.remove_quietly([*names, marker_name(self.image_id, self.attempt)])

    def _capacity(self) -> int:
        # An image up to swift_store_large_object_size is one segment; past it, further
        # segments of swift_store_large_object_chunk_size (the size is not known in advance).
        if self.segment_number == 1:
            return self.store.large_object_size
        return self.store.large_object_chunk_size

    def _hand(self, item: object) -> None:
        if not self.feed.put(item):
            raise self.error or self.store.unavailable_because("the write was aborted")

    # --- the uploader's thread -------------------------------------------------------------

    def _upload(self) -> None:
        # No retries: a streamed body cannot be sent again.
        connection = self.store.connection(retries=0)
        try:
            while (first := self.feed.get(IDLE_SECONDS)) is not FINISHED:
                self.uploaded.append(self._put_segment(connection, first))
        except _Stopped:
            pass
        except BaseException as error:
            self.error = error if isinstance(error, GlanceError) else self.store.unavailable(error)
            self.feed.stop()
        finally:
            # Closing the socket in the middle of a chunked body makes Swift discard it.
            connection.close()

    def _put_segment(self, connection: Connection, first: object) -> Segment:
        name = segment_name(self.image_id, self.attempt, len(self.uploaded) + 1)
        # Swift checks the token once, when a PUT starts, and a streamed body cannot be sent
        # again after a 401: this HEAD renews an expired token (swiftclient re-authenticates on
        # 401) before each segment, so an upload may outlive many tokens.
        connection.head_container(self.store.container)
        body = _SegmentBody(self.feed, first)
        etag = connection.put_object(self.store.container, name, iter(body))
        return Segment(name, etag, body.size)


class SegmentCopy(StoreWrite):
    """An attempt's segments copied by Swift itself from segments elsewhere in the same account
    (the staging area's, or another store's container), committed by one manifest PUT as a
    :class:`SegmentedWrite`: no byte of the image passes through this process."""

    def __init__(self, store: SwiftStore, image_id: str, attempt: str, sources: list[Segment]):
        """``sources``: the data's segments in order, named ``<container>/<object>``."""
        self.store = store
        self.image_id = image_id
        self.attempt = attempt
        self.copied: list[Segment] = []
        self.committed = False
        store.put_marker(marker_name(image_id, attempt))
        try:
            for number, source in enumerate(sources, start=1):
                name = segment_name(image_id, attempt, number)
                store.copy_segment(source, name)
                self.copied.append(Segment(name, source.etag, source.size))
        except BaseException:
            self.abort()
            raise

    def write(self, chunk: bytes) -> None:
        raise TypeError("a segment copy is filled by Swift, not written to")

    def commit(self) -> None:
        segments = self.copied or [self.store.put_empty_segment(self.image_id, self.attempt)]
        self.store.put_manifest(
            self.image_id, joined(self.store, self.image_id, self.attempt, segments)
        )
        self.committed = True
        self.store.remove_quietly([marker_name(self.image_id, self.attempt)])

    def abort(self) -> None:
        if self.committed:
            return
        names = [segment.name for segment in self.copied]
        self.store.remove_quietly([*names, marker_name(self.image_id, self.attempt)])


def joined(
    store: SwiftStore, image_id: str, attempt: str, segments: list[Segment]
) -> list[Segment]:
    """What the image's manifest names: the segments, or sub-manifests of them when there are
    more than one manifest may hold."""
    if len(segments) <= MANIFEST_SEGMENTS:
        return segments
    groups = [
        segments[start : start + MANIFEST_SEGMENTS]
        for start in range(0, len(segments), MANIFEST_SEGMENTS)
    ]
    if len(groups) > MANIFEST_SEGMENTS:
        raise GlanceError(413, "The image needs more segments than Swift can join.")
    return [
        store.put_submanifest(submanifest_name(image_id, attempt, number), group)
        for number, group in enumerate(groups, start=1)
    ]


class _SegmentBody:
    """The chunks of one segment, read from the feed until its end marker."""

    def __init__(self, feed: Feed, first: object):
        self.feed = feed
        self.first = first
        self.size = 0

    def __iter__(self) -> Iterator[bytes]:
        item = self.first
        while item is not END_OF_SEGMENT:
            chunk = cast(bytes, item)
            self.size += len(chunk)
            yield chunk
            item = self.feed.get(IDLE_SECONDS)


def manifest_json(container: str, segments: list[Segment]) -> str:
    """An SLO manifest body; a string, so swiftclient may send it again on a retry."""
    entries = [
        {"path": f"/{container}/{segment.name}", "etag": segment.etag, "size_bytes": segment.size}
        for segment in segments
    ]
    return json.dumps(entries)
