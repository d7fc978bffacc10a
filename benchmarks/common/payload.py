"""The 1 GiB image the data benchmarks send, as a file, a generator or a stream, and the checks
that the server stored it whole and gave it back unchanged."""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from common.client import TRANSFER_TIME_LIMIT, BenchError, check_deadline

if TYPE_CHECKING:
    from common.client import Client
    from common.measure import Transfer

MiB = 1024 * 1024
PIECE = MiB  # the repeated block, a chunk of the chunked PUT, the download buffer
PIECES = 1024
IMAGE_SIZE = PIECE * PIECES  # 1 GiB


def digests_of(block: bytes, pieces: int = PIECES) -> tuple[str, str]:
    """MD5 and SHA-512 of ``block`` repeated: Glance's ``checksum`` and ``os_hash_value``."""
    md5, sha512 = hashlib.md5(usedforsecurity=False), hashlib.sha512()
    for _ in range(pieces):
        md5.update(block)
        sha512.update(block)
    return md5.hexdigest(), sha512.hexdigest()


@dataclass(frozen=True)
class Payload:
    """The image: one random 1 MiB block PIECES times, and its MD5 and SHA-512.

    Random, so nothing on the way can take a shortcut through it; repeated, so a download can
    be compared with it read by read, without a second GiB in memory.
    """

    block: bytes
    digests: tuple[str, str]

    @classmethod
    def of(cls, block: bytes) -> Payload:
        return cls(block, digests_of(block))

    @contextlib.contextmanager
    def source_file(self, data_dir: Path) -> Iterator[Path]:
        """The image written to ``DATA_DIR/source.bin`` for sendfile(2); removed afterwards."""
        path = data_dir / "source.bin"
        try:
            with path.open("wb") as handle:
                for _ in range(PIECES):
                    handle.write(self.block)
                handle.flush()
                os.fdatasync(handle.fileno())  # not left to write back during measured uploads
            yield path
        finally:
            path.unlink(missing_ok=True)

    def senders(self, client: Client, source: Path) -> dict[str, Callable[[str, Transfer], None]]:
        """The two ways the benchmarks PUT the image to a path, by the name their phases carry."""
        return {
            "Content-Length": lambda path, transfer: client.put_with_length(
                path, source, IMAGE_SIZE, transfer.add_bytes
            ),
            "chunked 1 MiB": lambda path, transfer: client.put_chunked(
                path, self.block, PIECES, transfer.add_bytes
            ),
        }


def check_stored(image: dict, size: int, digests: tuple[str, str], checks: list[str]) -> bool:
    """Whether the server's record of ``image`` is active with this size and these hashes.

    Each check goes into ``checks``, marked WRONG where it failed.
    """
    md5, sha512 = digests
    results = {
        f"status {image.get('status')}": image.get("status") == "active",
        f"size {image.get('size')}": image.get("size") == size,
        "checksum (MD5)": image.get("checksum") == md5,
        f"os_hash_value ({image.get('os_hash_algo')})": image.get("os_hash_value") == sha512,
    }
    checks += [label + ("" if ok else " WRONG") for label, ok in results.items()]
    return all(results.values())


class ImageStream:
    """``size`` bytes of the image (``block`` repeated) from offset ``start``, for client
    libraries: a generator of pieces of at most ``piece`` bytes (requests sends each as a chunk,
    swiftclient as given), or a stream to ``read`` (boto3). Every piece handed out is counted by
    ``progress``; past ``limit`` seconds it raises, as the senders of `Client` do."""

    def __init__(
        self,
        block: bytes,
        size: int,
        piece: int,
        progress: Callable[[int], None],
        limit: float = TRANSFER_TIME_LIMIT,
        start: int = 0,
    ):
        self.block_size = len(block)
        # A piece from any offset within the first block is a slice of this.
        self.view = memoryview(block * (piece // len(block) + 1))
        self.piece = piece
        self.position, self.end = start, start + size
        self.progress = progress
        self.limit = limit
        self.deadline = time.monotonic() + limit

    def _take(self, count: int) -> memoryview:
        check_deadline(self.deadline, self.limit)
        offset = self.position % self.block_size
        self.position += count
        self.progress(count)
        return self.view[offset : offset + count]

    def __iter__(self) -> Iterator[memoryview]:
        while count := min(self.piece, self.end - self.position):
            yield self._take(count)

    def __len__(self) -> int:
        return self.end - self.position

    def read(self, count: int = -1) -> bytes:
        wanted = len(self) if count < 0 else min(count, len(self))
        pieces = []
        while wanted:
            pieces.append(self._take(min(self.piece, wanted)))
            wanted -= len(pieces[-1])
        return b"".join(pieces)


def receive_image(block: bytes, chunks: Iterable[bytes], transfer: Transfer, size: int) -> None:
    """Count a download of the image into ``transfer``, every read compared with what was sent
    (a slice of at most one block of the image is a slice of the block doubled)."""
    doubled = block * 2
    deadline = time.monotonic() + TRANSFER_TIME_LIMIT * size / IMAGE_SIZE
    mismatches = 0
    for chunk in chunks:
        view = memoryview(chunk)
        while view:
            part = view[: len(block)]
            if not doubled.startswith(part, transfer.bytes_moved % len(block)):
                mismatches += 1
            transfer.add_bytes(len(part))
            view = view[len(part) :]
        check_deadline(deadline)
    if transfer.bytes_moved != size:
        raise BenchError(f"got {transfer.bytes_moved} bytes, expected {size}")
    if mismatches:
        raise BenchError(f"{mismatches} reads differ from the uploaded bytes")
    transfer.checks.append("bytes match the upload")
