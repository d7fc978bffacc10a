"""The Ceph RBD store (glance_store's ``rbd`` backend): one RBD image per image in one pool,
written and read with librbd (Debian's ``rados``/``rbd`` bindings; no kernel module, no CLI).

What the pool holds is what Glance leaves there: an RBD image named by the image's UUID, in
objects of ``rbd_store_chunk_size`` MiB, with a protected snapshot ``snap`` that Nova and Cinder
clone copy-on-write; the location is ``rbd://<fsid>/<pool>/<image id>/snap``.

A write attempt fills an RBD image of its own, ``<image id>.<attempt>.partial``: created at the
announced size, or grown in doubling steps (up to 8 GiB at a time) when the size is unknown, and
trimmed to the bytes written. ``commit`` snapshots and protects it, then renames it to the
image's name: a rename is one metadata update, so readers see either nothing or complete data
with its snapshot. Chunks go out asynchronously as they arrive, at most ``WRITE_WINDOW`` bytes
in flight, so the pipeline keeps streaming while the OSDs write and memory stays flat.

Every librados call has a timeout (``rados_connect_timeout``, also used for the monitor and OSD
operation timeouts), so a cluster that stops answering fails a request with 503 instead of
hanging a worker; what an abort could not remove then is left for ``sweep``.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import UTC
from pathlib import Path
from typing import Any

from images.storage.base import (
    CHUNK_SIZE,
    ByteRange,
    ImageStore,
    StoredData,
    StoreWrite,
    boolean_option,
    data_in_use,
    data_missing,
    integer_option,
    store_unavailable,
    store_weight,
)
from imageservice.errors import GlanceError

try:
    import rados
    import rbd
except ImportError:  # Debian's python3-rados / python3-rbd, linked in by `make ceph-bindings`
    rados = rbd = None

logger = logging.getLogger(__name__)

MiB = 1024 * 1024
GiB = 1024 * MiB
# glance_store's defaults, in its units.
DEFAULT_POOL = "images"
DEFAULT_CHUNK_MB = 8
SNAPSHOT = "snap"
# glance_store leaves librados's defaults (no timeout at all) unless rados_connect_timeout is
# set; a worker then hangs for good on a dead cluster. Ours when the option is unset or <= 0.
DEFAULT_TIMEOUT = 30
# An image of unknown size grows by doubling steps, at most this much at once (glance_store's).
MAX_RESIZE_STEP = 8 * GiB
# Bytes one write has in flight (asynchronous librbd writes not yet acknowledged). Through the
# whole pipeline, 16 MiB moved no faster than 4 or 8 here and grew the process by 61 MiB where
# 8 MiB grew it by 46.
WRITE_WINDOW = 8 * MiB
# Downloads read ahead this many pieces of READ_PIECE bytes. Larger pieces read no faster here
# and cost the worker more memory for good: 4 MiB ones left glibc's arenas 70 MiB larger after a
# download, 1 MiB ones 25 MiB.
READ_PIECE = CHUNK_SIZE
READS_IN_FLIGHT = 4
PARTIAL = re.compile(r"^(?P<image_id>[0-9a-f-]{36})\.(?P<attempt>[0-9a-f]+)\.partial$")
MISSING_BINDINGS = (
    "the Ceph bindings (Python modules rados and rbd) cannot be imported: install Debian's "
    "python3-rados and python3-rbd (apt-get install --no-install-recommends python3-rados "
    "python3-rbd), then run `make ceph-bindings` to link them into the virtualenv"
)


def partial_name(image_id: str, attempt: str) -> str:
    return f"{image_id}.{attempt}.partial"


class RbdStore(ImageStore):
    type_name = "rbd"
    OPTIONS = frozenset(
        {
            "rbd_store_pool",
            "rbd_store_user",
            "rbd_store_ceph_conf",
            "rbd_store_chunk_size",
            "rados_connect_timeout",
            "rbd_thin_provisioning",
        }
    )

    def __init__(
        self,
        store_id: str,
        *,
        pool: str = DEFAULT_POOL,
        user: str | None = None,
        ceph_conf: str = "",
        chunk_size: int = DEFAULT_CHUNK_MB * MiB,
        timeout: int = DEFAULT_TIMEOUT,
        thin_provisioning: bool = False,
        description: str = "",
        weight: int = 0,
    ):
        self.id = store_id
        self.pool = pool
        self.user = user
        self.ceph_conf = ceph_conf
        self.chunk_size = chunk_size
        self.timeout = timeout
        self.thin_provisioning = thin_provisioning
        self.description = description
        self.weight = weight
        self._lock = threading.Lock()
        self._cluster: Any = None
        self._cluster_pid = 0
        self._fsid: str | None = None
        # Writes of this process by RBD image name: a delete or sweep closes them before it
        # removes their image (librbd refuses to remove an image that is open).
        self._writes: dict[str, RbdWrite] = {}

    @classmethod
    def missing_requirements(cls) -> str | None:
        return MISSING_BINDINGS if rbd is None else None

    @classmethod
    def from_options(cls, name: str, options: Mapping[str, str]) -> RbdStore:
        chunk_mb = integer_option(options, "rbd_store_chunk_size", DEFAULT_CHUNK_MB, 1)
        # librbd's objects are powers of two (its "order"); glance_store takes log2 as well.
        if chunk_mb & (chunk_mb - 1):
            raise ValueError(f"rbd_store_chunk_size must be a power of two, got {chunk_mb}")
        timeout = integer_option(options, "rados_connect_timeout", DEFAULT_TIMEOUT, None)
        return cls(
            name,
            pool=options.get("rbd_store_pool", "").strip() or DEFAULT_POOL,
            user=options.get("rbd_store_user", "").strip() or None,
            ceph_conf=options.get("rbd_store_ceph_conf", "").strip(),
            chunk_size=chunk_mb * MiB,
            timeout=timeout if timeout > 0 else DEFAULT_TIMEOUT,
            thin_provisioning=boolean_option(options, "rbd_thin_provisioning"),
            description=options.get("store_description", ""),
            weight=store_weight(options),
        )

    # --- the cluster -------------------------------------------------------------------------

    def _connect(self) -> Any:
        # An empty rbd_store_ceph_conf lets librados find its file (CEPH_CONF, /etc/ceph).
        cluster = rados.Rados(conffile=self.ceph_conf, rados_id=self.user)
        seconds = str(self.timeout)
        for option in ("rados_osd_op_timeout", "rados_mon_op_timeout", "client_mount_timeout"):
            cluster.conf_set(option, seconds)
        # Writes keep their own window in flight and every read is made once: librbd's cache
        # (up to 32 MiB per open image) would only add memory to each worker.
        cluster.conf_set("rbd_cache", "false")
        try:
            cluster.connect(timeout=self.timeout)
        except BaseException:
            cluster.shutdown()
            raise
        return cluster

    def cluster(self) -> Any:
        """This process's connection to the cluster, made on first use and shared by its
        threads (librados is thread-safe). A forked worker makes its own: librados's threads
        do not survive a fork."""
        with self._lock:
            if self._cluster is None or self._cluster_pid != os.getpid():
                self._cluster = self._connect()
                self._cluster_pid = os.getpid()
            return self._cluster

    def ioctx(self) -> Any:
        return self.cluster().open_ioctx(self.pool)

    @property
    def fsid(self) -> str:
        # A cluster's fsid never changes: asked once per process.
        if self._fsid is None:
            self._fsid = self.cluster().get_fsid()
        return self._fsid

    @property
    def order(self) -> int:
        return self.chunk_size.bit_length() - 1

    def features(self) -> int:
        """glance_store's choice: the cluster's ``rbd_default_features``, else layering only
        (what a protected, cloneable snapshot needs)."""
        configured = self.cluster().conf_get("rbd_default_features")
        try:
            value = int(configured or 0)
        except ValueError:  # a list of names, as newer Ceph accepts: librbd reads it itself
            return 0
        return value or rbd.RBD_FEATURE_LAYERING

    @contextmanager
    def talking(self, image_id: str | None = None) -> Iterator[None]:
        """librados's and librbd's failures as the contract's errors: a missing image is
        :func:`data_missing` when the request was for ``image_id``'s data, anything else 503."""
        try:
            yield
        except rbd.ImageNotFound as error:
            if image_id is None:
                raise store_unavailable(self.id, _reason(error)) from error
            raise data_missing(self.id, image_id) from error
        except (rados.Error, rbd.Error) as error:
            raise store_unavailable(self.id, self.describe(error)) from error

    def describe(self, error: BaseException) -> str:
        """What went wrong, in words for an operator."""
        if isinstance(error, rados.ObjectNotFound | rbd.ObjectNotFound):
            return f"pool {self.pool} does not exist (or {self._who()} may not see it)"
        if isinstance(error, rados.PermissionDeniedError | rbd.PermissionError):
            return f"{self._who()} is not allowed to use pool {self.pool}: {_reason(error)}"
        if isinstance(error, rados.TimedOut | rados.InterruptedOrTimeoutError):
            return f"the cluster did not answer within {self.timeout} s ({_reason(error)})"
        return _reason(error)

    def _who(self) -> str:
        return f"client.{self.user}" if self.user else "the Ceph client"

    # --- the contract ------------------------------------------------------------------------

    def open_write(self, image_id: str, attempt: str, size: int | None = None) -> RbdWrite:
        return RbdWrite(self, image_id, attempt, size)

    def place_file(self, image_id: str, path: Path, attempt: str) -> RbdWrite:
        sink = RbdWrite(self, image_id, attempt, path.stat().st_size)
        try:
            with open(path, "rb") as handle:
                while chunk := handle.read(self.chunk_size):
                    sink.write(chunk)
        except BaseException:
            sink.abort()
            raise
        return sink

    def copy_from(self, source: ImageStore, image_id: str, attempt: str) -> RbdWrite | None:
        # librbd copies inside the cluster: no byte of it passes through this process's Python.
        if not isinstance(source, RbdStore):
            return None
        with source.talking(image_id):
            if source.fsid != self.fsid:
                return None
            name = partial_name(image_id, attempt)
            with (
                source.ioctx() as source_ioctx,
                self.ioctx() as ioctx,
                _open(source, source_ioctx, image_id, read_only=True) as image,
            ):
                size = image.size()
                try:
                    image.copy(ioctx, name, features=self.features() or None, order=self.order)
                except BaseException:
                    with suppress(rados.Error, rbd.Error):
                        self._remove_partial(ioctx, name)
                    raise
        return RbdWrite(self, image_id, attempt, size, copied=True)

    def read(self, image_id: str, byte_range: ByteRange | None = None) -> Iterator[bytes]:
        with self.talking(image_id):
            ioctx = self.ioctx()
            try:
                image = _open(self, ioctx, image_id, read_only=True)
                size = image.size()
            except BaseException:
                ioctx.close()
                raise
        if byte_range is None:
            byte_range = ByteRange(0, size - 1)
        return ImageBody(self, ioctx, image, byte_range.start, min(byte_range.end + 1, size))

    def has_data(self, image_id: str) -> bool:
        with self.talking(), self.ioctx() as ioctx:
            try:
                _open(self, ioctx, image_id, read_only=True).close()
            except rbd.ImageNotFound:
                return False
        return True

    def check_deletable(self, image_id: str) -> None:
        with self.talking(), self.ioctx() as ioctx:
            try:
                image = rbd.Image(ioctx, image_id, read_only=True)
            except rbd.ImageNotFound:
                return
            with image:
                self._refuse_if_in_use(image, image_id)

    def _refuse_if_in_use(self, image: Any, image_id: str) -> None:
        # Clones of the snapshot (Nova's disks, Cinder's volumes), or a client holding the
        # image open: Glance refuses the delete as "in use", and the data stays.
        snapshots = {snap["name"] for snap in image.list_snaps()}
        if SNAPSHOT in snapshots:
            image.set_snap(SNAPSHOT)
            children = list(image.list_children2())
            image.set_snap(None)
            if children:
                raise data_in_use(image_id)
        if list(image.watchers_list()):
            raise data_in_use(image_id)

    def delete(self, image_id: str) -> None:
        with self.talking(), self.ioctx() as ioctx:
            self._remove_data(ioctx, image_id)
            for name in self._partials(ioctx, image_id):
                self._remove_partial(ioctx, name)

    def _remove_data(self, ioctx: Any, image_id: str) -> None:
        try:
            # Read-only first: a read-write open would count itself among the watchers.
            with rbd.Image(ioctx, image_id, read_only=True) as image:
                self._refuse_if_in_use(image, image_id)
            with rbd.Image(ioctx, image_id) as image:
                _drop_snapshot(image, image_id)
        except rbd.ImageNotFound:
            return
        try:
            rbd.RBD().remove(ioctx, image_id)
        except rbd.ImageNotFound:
            pass
        except rbd.ImageBusy as error:
            raise data_in_use(image_id) from error
        except rbd.ImageHasSnapshots:
            # Snapshots someone else made: the data goes to the pool's trash (as glance_store
            # does), where Ceph keeps it until they are gone.
            try:
                rbd.RBD().trash_move(ioctx, image_id)
            except rbd.ImageBusy as error:
                raise data_in_use(image_id) from error

    def _partials(self, ioctx: Any, image_id: str | None = None) -> list[str]:
        """The attempts' images in the pool (of ``image_id`` only, when given)."""
        return [
            name
            for name in rbd.RBD().list(ioctx)
            if (match := PARTIAL.match(name)) and image_id in (None, match["image_id"])
        ]

    def _remove_partial(self, ioctx: Any, name: str) -> bool:
        """Remove an attempt's image (closing this process's write of it first); False when
        it is open elsewhere: a writer in another process, or one that died less than a watch
        timeout ago, which the next sweep finds again."""
        with self._lock:
            write = self._writes.pop(name, None)
        if write is not None:
            write.close()
        try:
            try:
                rbd.RBD().remove(ioctx, name)
            except rbd.ImageHasSnapshots:
                # A commit that failed after taking its snapshot.
                with rbd.Image(ioctx, name) as image:
                    _drop_snapshot(image, name)
                rbd.RBD().remove(ioctx, name)
        except rbd.ImageNotFound:
            return True
        except rbd.ImageBusy:
            return False
        return True

    def sweep(self, is_live: Callable[[str, str], bool]) -> list[str]:
        removed = []
        with self.talking(), self.ioctx() as ioctx:
            for name in self._partials(ioctx):
                match = PARTIAL.match(name)
                if is_live(match["image_id"], match["attempt"]):
                    continue
                if self._remove_partial(ioctx, name):
                    removed.append(name)
        return removed

    def listing(self) -> list[StoredData]:
        found = []
        with self.talking(), self.ioctx() as ioctx:
            for name in rbd.RBD().list(ioctx):
                if not _is_image_id(name):
                    continue  # an attempt's partial image, or someone else's
                try:
                    with rbd.Image(ioctx, name, read_only=True) as image:
                        modified = image.modify_timestamp().replace(tzinfo=UTC)
                        found.append(StoredData(name, image.size(), modified))
                except rbd.ImageNotFound:
                    continue  # deleted since the list
        return found

    def url_for(self, image_id: str) -> str:
        with self.talking():
            fsid = self.fsid
        return f"rbd://{fsid}/{self.pool}/{image_id}/{SNAPSHOT}"

    def prepare(self) -> str | None:
        # A connection of its own, closed again: prepare runs in processes that fork workers.
        try:
            cluster = self._connect()
        except rados.Error as error:
            return f"{self.id}: cannot connect to the Ceph cluster: {self.describe(error)}"
        try:
            with cluster.open_ioctx(self.pool) as ioctx:
                rbd.RBD().list(ioctx)
        except (rados.Error, rbd.Error) as error:
            return f"{self.id}: {self.describe(error)}"
        finally:
            cluster.shutdown()
        return None

    def properties(self) -> dict[str, object]:
        # What Glance shows for an rbd store, and the cluster's fsid when it answers.
        shown: dict[str, object] = {
            "chunk_size": self.chunk_size,
            "pool": self.pool,
            "thin_provisioning": self.thin_provisioning,
        }
        try:
            shown["fsid"] = self.fsid
        except rados.Error as error:
            logger.warning("%s: no fsid for the store details: %s", self.id, self.describe(error))
        return shown

    # --- what an RbdWrite asks of its store ---------------------------------------------------

    def track(self, name: str, write: RbdWrite | None) -> None:
        with self._lock:
            if write is None:
                self._writes.pop(name, None)
            else:
                self._writes[name] = write


class RbdWrite(StoreWrite):
    """One attempt's RBD image, filled with asynchronous writes of the chunks it is given."""

    def __init__(
        self,
        store: RbdStore,
        image_id: str,
        attempt: str,
        size: int | None,
        *,
        copied: bool = False,
    ):
        """``copied``: the attempt's image already holds ``size`` bytes (``copy_from``)."""
        self.store = store
        self.image_id = image_id
        self.name = partial_name(image_id, attempt)
        self.lock = threading.Lock()
        self.closed = False
        self.finished = False
        self.in_flight: deque[tuple[Any, int]] = deque()
        self.in_flight_bytes = 0
        self.step = store.chunk_size
        with store.talking():
            self.ioctx = store.ioctx()
            try:
                if not copied:
                    rbd.RBD().create(
                        self.ioctx,
                        self.name,
                        size or 0,
                        order=store.order,
                        old_format=False,
                        features=store.features() or None,
                    )
                self.image = rbd.Image(self.ioctx, self.name)
            except BaseException:
                self.ioctx.close()
                raise
        self.capacity = size or 0
        self.offset = size if copied else 0
        store.track(self.name, self)

    def write(self, chunk: bytes) -> None:
        # Each chunk goes out as it comes (librbd keeps a reference until it is written), a
        # window of them in flight: no copy, and the pipeline never waits for one round trip.
        data = bytes(chunk)
        with self.lock, self.store.talking():
            self._check_open()
            end = self.offset + len(data)
            if end > self.capacity:
                self._grow_to(end)
            # Thin provisioning: unwritten ranges of an RBD image read as zeros, take no space.
            if not (self.store.thin_provisioning and data == bytes(len(data))):
                completion = self.image.aio_write(data, self.offset, _ignore)
                self.in_flight.append((completion, len(data)))
                self.in_flight_bytes += len(data)
            self.offset = end
            while self.in_flight_bytes > WRITE_WINDOW:
                self._settle_oldest()

    def _settle_oldest(self) -> None:
        completion, length = self.in_flight.popleft()
        self.in_flight_bytes -= length
        _settle(completion)

    def _grow_to(self, end: int) -> None:
        # Doubling steps as glance_store's: few resizes for a large image of unknown size.
        capacity = self.capacity
        while capacity < end:
            self.step = min(self.step * 2, MAX_RESIZE_STEP)
            capacity += self.step
        self.image.resize(capacity)
        self.capacity = capacity

    def _check_open(self) -> None:
        if self.closed:
            raise store_unavailable(
                self.store.id, f"the write of {self.image_id} was removed (image deleted or swept)"
            )

    def commit(self) -> None:
        store = self.store
        with self.lock, store.talking():
            self._check_open()
            while self.in_flight:
                self._settle_oldest()
            if self.capacity != self.offset:
                self.image.resize(self.offset)  # trimmed to the bytes written
            self.image.flush()
            self.image.create_snap(SNAPSHOT)
            self.image.protect_snap(SNAPSHOT)
            self._close()
            try:
                rbd.RBD().rename(self.ioctx, self.name, self.image_id)
            except rbd.ImageExists:
                # Data of an earlier write no location names (the status machine allows only
                # one writer to commit): it is replaced, as a file or an object would be.
                store._remove_data(self.ioctx, self.image_id)
                rbd.RBD().rename(self.ioctx, self.name, self.image_id)
            self.finished = True
        self.ioctx.close()

    def abort(self) -> None:
        if self.finished:
            return
        self.finished = True
        self.close()
        try:
            with self.store.talking():
                self.store._remove_partial(self.ioctx, self.name)
        except GlanceError as error:
            # The cluster is gone: the attempt's image stays until sweep() finds it over.
            logger.warning("abort of %s: left %s for sweep: %s", self.image_id, self.name, error)
        self.ioctx.close()

    def close(self) -> None:
        """Stop writing: wait for the writes in flight (bounded by the operation timeout)
        and close the image; later writes fail."""
        with self.lock:
            if self.closed:
                return
            while self.in_flight:
                with suppress(rados.Error, rbd.Error):  # the attempt is given up anyway
                    self._settle_oldest()
            self._close()

    def _close(self) -> None:
        self.closed = True
        self.store.track(self.name, None)
        self.image.close()


class ImageBody:
    """The bytes of one RBD image (its snapshot) from ``start`` to ``end``, read ahead a few
    pieces at a time; ``close`` releases the image even when the response is dropped unread."""

    def __init__(self, store: RbdStore, ioctx: Any, image: Any, start: int, end: int):
        self.store = store
        self.ioctx = ioctx
        self.image = image
        self.next_offset = start
        self.end = end
        self.reads: deque[tuple[Any, list[bytes | None]]] = deque()
        self.closed = False

    def __iter__(self) -> ImageBody:
        return self

    def __next__(self) -> bytes:
        if self.closed:
            raise StopIteration
        try:
            while len(self.reads) < READS_IN_FLIGHT and self.next_offset < self.end:
                self._read_ahead()
            if not self.reads:
                self.close()
                raise StopIteration
            completion, landed = self.reads.popleft()
            with self.store.talking():
                _settle(completion)
            data = landed[0] or b""
            if not data:
                raise store_unavailable(self.store.id, "the image ended before its size")
            return data
        except BaseException:
            self.close()
            raise

    def _read_ahead(self) -> None:
        length = min(READ_PIECE, self.end - self.next_offset)
        landed: list[bytes | None] = [None]

        def arrived(completion: Any, data: bytes | None) -> None:
            landed[0] = data

        with self.store.talking():
            completion = self.image.aio_read(self.next_offset, length, arrived)
        self.reads.append((completion, landed))
        self.next_offset += length

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        # librbd writes into the buffers of reads in flight: they finish before the image closes.
        for completion, _ in self.reads:
            completion.wait_for_complete_and_cb()
        self.reads.clear()
        self.image.close()
        self.ioctx.close()


def _open(store: RbdStore, ioctx: Any, image_id: str, *, read_only: bool) -> Any:
    """The image at its snapshot ``snap``, as Glance reads it; its head when it has none."""
    try:
        return rbd.Image(ioctx, image_id, snapshot=SNAPSHOT, read_only=read_only)
    except rbd.ImageNotFound:
        # Either no image, or no snapshot of that name: the head says which.
        return rbd.Image(ioctx, image_id, read_only=read_only)


def _drop_snapshot(image: Any, name: str) -> None:
    """Unprotect and remove the snapshot ``snap`` (refused while it has clones)."""
    if SNAPSHOT not in {snap["name"] for snap in image.list_snaps()}:
        return
    try:
        if image.is_protected_snap(SNAPSHOT):
            image.unprotect_snap(SNAPSHOT)
    except rbd.ImageBusy as error:
        raise data_in_use(name) from error
    image.remove_snap(SNAPSHOT)


def _settle(completion: Any) -> None:
    """Wait for one asynchronous operation; raise its failure as librbd's error."""
    completion.wait_for_complete_and_cb()
    result = completion.get_return_value()
    if result < 0:
        raise rbd.OSError(f"asynchronous I/O failed: {os.strerror(-result)}", errno=-result)


def _ignore(*args: Any) -> None:
    """librbd's completion callback: the result is read from the completion instead."""


def _reason(error: BaseException) -> str:
    return str(error) or type(error).__name__


def _is_image_id(name: str) -> bool:
    try:
        return str(uuid.UUID(name)) == name
    except ValueError:
        return False
