"""The filesystem store (Glance's ``file`` backend): one file per image in a directory."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from images.storage.base import (
    CHUNK_SIZE,
    ByteRange,
    ImageStore,
    StoredData,
    StoreWrite,
    data_missing,
    store_weight,
)
from imageservice.private_files import PRIVATE_DIRECTORY, PRIVATE_FILE

# Written bytes are flushed to disk and dropped from the page cache every FLUSH_EVERY bytes.
# Filling fresh page-cache pages cost more CPU than hashing on the benchmark machine; reusing
# the few just released keeps the write lane cheap, and the data is durable as it arrives.
FLUSH_EVERY = 16 * 1024 * 1024


class FileWrite(StoreWrite):
    """Bytes into a temporary file beside ``destination``, renamed into place on commit, so a
    crash never leaves a torn file under the final name."""

    def __init__(self, destination: Path, temporary: Path, *, filled: bool = False):
        """``filled``: ``temporary`` already holds the data, flushed (``place_file``)."""
        destination.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIRECTORY)
        self.destination = destination
        self.temporary = temporary
        self.fd: int | None = None
        if not filled:
            # Image data is readable by the service user only (docs/security.md).
            self.fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
        self.written = 0
        self.flushed = 0

    def write(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view:
            count = os.write(self.fd, view)
            view = view[count:]
        self.written += len(chunk)
        if self.written - self.flushed >= FLUSH_EVERY:
            os.fdatasync(self.fd)
            release_cached_pages(self.fd, self.flushed, self.written - self.flushed)
            self.flushed = self.written

    def commit(self) -> None:
        if self.fd is not None:
            os.fsync(self.fd)
        self._close()
        os.replace(self.temporary, self.destination)
        fsync_directory(self.destination.parent)

    def abort(self) -> None:
        self._close()
        self.temporary.unlink(missing_ok=True)

    def _close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


@dataclass(frozen=True)
class FilesystemStore(ImageStore):
    type_name = "file"
    OPTIONS = frozenset({"filesystem_store_datadir"})
    REQUIRED_OPTIONS = frozenset({"filesystem_store_datadir"})

    id: str
    directory: Path
    description: str = ""
    weight: int = 0

    @classmethod
    def from_options(cls, name: str, options: Mapping[str, str]) -> FilesystemStore:
        return cls(
            name,
            Path(options["filesystem_store_datadir"]),
            options.get("store_description", ""),
            store_weight(options),
        )

    def path_for(self, image_id: str) -> Path:
        # Only ever an image UUID from our own database: nothing a caller sends reaches here.
        return self.directory / image_id

    def temporary_path_for(self, image_id: str, attempt: str) -> Path:
        return self.directory / f".{image_id}.{attempt}.partial"

    def open_write(self, image_id: str, attempt: str, size: int | None = None) -> FileWrite:
        return FileWrite(self.path_for(image_id), self.temporary_path_for(image_id, attempt))

    def place_file(self, image_id: str, path: Path, attempt: str) -> FileWrite:
        # A hard link moves no bytes; the source name stays, so a later failure keeps the data
        # staged. Across filesystems the bytes are copied and flushed before the rename.
        self.directory.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIRECTORY)
        temporary = self.temporary_path_for(image_id, attempt)
        temporary.unlink(missing_ok=True)
        if os.stat(path).st_dev == os.stat(self.directory).st_dev:
            os.link(path, temporary)
        else:
            shutil.copyfile(path, temporary)
            temporary.chmod(PRIVATE_FILE)
            with open(temporary, "rb") as handle:
                os.fsync(handle.fileno())
        return FileWrite(self.path_for(image_id), temporary, filled=True)

    def read(self, image_id: str, byte_range: ByteRange | None = None) -> Iterator[bytes]:
        try:
            handle = open(self.path_for(image_id), "rb", buffering=0)  # noqa: SIM115
        except FileNotFoundError:
            raise data_missing(self.id, image_id) from None
        if byte_range is None:
            byte_range = ByteRange(0, os.fstat(handle.fileno()).st_size - 1)
        return _read_file(handle, byte_range)

    def has_data(self, image_id: str) -> bool:
        return self.path_for(image_id).exists()

    def delete(self, image_id: str) -> None:
        self.path_for(image_id).unlink(missing_ok=True)
        # Partial files of every attempt (and the attempt-less name of older versions).
        for partial in self.directory.glob(f".{image_id}.*partial"):
            partial.unlink(missing_ok=True)

    def sweep(self, is_live: Callable[[str, str], bool]) -> list[str]:
        removed = []
        for partial in sorted(self.directory.glob(".*.partial")):
            image_id, _, attempt = partial.name[1:].removesuffix(".partial").partition(".")
            if not is_live(image_id, attempt):
                partial.unlink(missing_ok=True)
                removed.append(partial.name)
        return removed

    def listing(self) -> list[StoredData]:
        found = []
        for path in sorted(self.directory.glob("*")) if self.directory.is_dir() else []:
            if path.is_file() and not path.name.startswith("."):
                stat = path.stat()
                modified = datetime.fromtimestamp(stat.st_mtime, tz=UTC)
                found.append(StoredData(path.name, stat.st_size, modified))
        return found

    def url_for(self, image_id: str) -> str:
        return self.path_for(image_id).as_uri()

    def prepare(self) -> str | None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIRECTORY)
        except OSError as error:
            return f"{self.id}: {error}"
        if not os.access(self.directory, os.W_OK):
            return f"{self.id}: {self.directory}"
        return None

    def properties(self) -> dict[str, object]:
        return {
            "data_dir": str(self.directory),
            "chunk_size": CHUNK_SIZE,
            "thin_provisioning": False,
        }


def _read_file(handle: BinaryIO, byte_range: ByteRange) -> Iterator[bytes]:
    # Streamed rather than sendfile(2): releasing pages behind the reader keeps a download of
    # uncached data as fast as one of cached data (docs/benchmarks.md).
    with handle:
        handle.seek(byte_range.start)
        position, released = byte_range.start, byte_range.start
        end = byte_range.end + 1
        while position < end:
            chunk = handle.read(min(CHUNK_SIZE, end - position))
            if not chunk:
                return
            position += len(chunk)
            if position - released >= FLUSH_EVERY:
                release_cached_pages(handle.fileno(), released, position - released)
                released = position
            yield chunk


def release_cached_pages(fd: int, offset: int, length: int) -> None:
    """Drop already-flushed pages of ``fd`` from the page cache (no-op where unsupported)."""
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)


def fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
