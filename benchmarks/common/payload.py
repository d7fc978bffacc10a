"""The 1 GiB image the data benchmarks send, and the check that the server stored it whole."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

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
