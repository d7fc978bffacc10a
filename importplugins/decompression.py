"""``image_decompression``: unpack gzip, bzip2, xz or single-member zip data (internals §3.4).

Differences from Glance, on purpose (§11.1 lists both as open holes upstream):

- The output is capped at ``IMAGE_SIZE_CAP`` bytes while it is written, so a small archive cannot
  fill the disk before the size cap is checked at store-write time.
- A zip member is streamed into a private temporary file in ``work_dir``; its own name is never
  used as a path.
- bzip2 and xz are supported as well as gzip and zip; LHA is not.

Detection is by magic bytes, never by name or ``disk_format``. Data that is not compressed is left
alone, and so is data whose ``container_format`` is ``compressed`` (the owner said it is meant to
stay compressed). Only one layer is removed: a ``.tar.gz`` becomes a tar file.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from importplugins.base import ImportContext, ImportPlugin, ImportPluginError

CHUNK_SIZE = 1024 * 1024
SKIPPED_METHODS = frozenset({"copy-image"})

MAGIC_NUMBERS: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b\x08", "gzip"),
    # "BZh" and the block size digit: requiring the digit keeps raw data that merely starts
    # with "BZh" from being taken for bzip2.
    *((b"BZh" + bytes([level]), "bzip2") for level in b"123456789"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"PK\x03\x04", "zip"),
)
MAGIC_LENGTH = max(len(magic) for magic, _ in MAGIC_NUMBERS)

CORRUPT_DATA_ERRORS = (
    EOFError,
    OSError,
    ValueError,
    zlib.error,
    lzma.LZMAError,
    zipfile.BadZipFile,
    NotImplementedError,  # a zip member compressed with a method the standard library lacks
    RuntimeError,  # an encrypted zip member
)


def compression_of(path: Path) -> str | None:
    """The compression format named by the file's magic bytes, or ``None``."""
    with path.open("rb") as data:
        head = data.read(MAGIC_LENGTH)
    for magic, name in MAGIC_NUMBERS:
        if head.startswith(magic):
            return name
    return None


class ImageDecompression(ImportPlugin):
    name = "image_decompression"
    description = (
        "Decompresses gzip, bzip2, xz and single-file zip image data (output capped at "
        "IMAGE_SIZE_CAP)."
    )

    def run(self, context: ImportContext) -> None:
        if context.method in SKIPPED_METHODS or context.container_format == "compressed":
            return
        data = context.data_path
        compression = compression_of(data)
        if compression is None:
            return
        cap = int(context.settings["image_size_cap"])
        descriptor, name = tempfile.mkstemp(
            dir=context.work_dir, prefix=f"{context.image_id}-", suffix=".uncompressed"
        )
        output = Path(name)
        try:
            with os.fdopen(descriptor, "wb") as target, _decompressed(data, compression) as source:
                _copy(source, target, cap)
        except ImportPluginError:
            output.unlink(missing_ok=True)
            raise
        except CORRUPT_DATA_ERRORS as error:
            output.unlink(missing_ok=True)
            if isinstance(error, OSError) and error.errno is not None:
                # A system error (disk full, I/O), not bad data: worth a retry.
                raise ImportPluginError(f"Could not decompress image data: {error}") from error
            raise ImportPluginError(
                f"Image data looks {compression}-compressed but cannot be decompressed: {error}",
                permanent=True,
            ) from error
        context.replace_data(output)


STREAM_OPENERS: dict[str, Callable[[Path], IO[bytes]]] = {
    "gzip": gzip.GzipFile,
    "bzip2": bz2.BZ2File,
    "xz": lzma.LZMAFile,
}


@contextmanager
def _decompressed(path: Path, compression: str) -> Iterator[IO[bytes]]:
    if compression != "zip":
        with STREAM_OPENERS[compression](path) as source:
            yield source
        return
    with zipfile.ZipFile(path) as archive:
        members = archive.infolist()
        if len(members) > 1:
            raise ImportPluginError("Archive contains more than one file.", permanent=True)
        if not members or members[0].is_dir():
            raise ImportPluginError("Archive contains no file.", permanent=True)
        with archive.open(members[0]) as source:
            yield source


def _copy(source: IO[bytes], target: IO[bytes], cap: int) -> None:
    written = 0
    while chunk := source.read(CHUNK_SIZE):
        written += len(chunk)
        if written > cap:
            raise ImportPluginError(
                f"Decompressed image data exceeds the image size cap of {cap} bytes",
                permanent=True,
            )
        target.write(chunk)
