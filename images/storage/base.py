"""The store driver contract: what every image store does, whatever keeps the bytes.

A store holds at most one object per image, named only by the image's UUID (from our own
database: nothing a caller sends becomes a name). The services above (``images.data`` for
uploads and downloads, ``tasks.runner`` for imports) speak only this contract; they never open
files or build paths of a store.

A driver receives bytes that are already hashed and inspected: the single-pass pipeline
(``images.storage.writer``) feeds the :class:`StoreWrite` that ``open_write`` returns and commits
it only when every check passed, or aborts it. Guarantees every driver keeps:

- a write is atomic: the data becomes visible under the image's name only on ``commit``; after
  ``abort`` nothing of that attempt is left in the store.
- ``place_file`` prepares a local file (a staged upload) as the image's data without sending it
  through the hashing pipeline again: a hard link on the same filesystem, else a copy;
  committed like any write. The source file stays.
- ``copy_from`` does the same with the image's data in another store when this store can copy
  it on the server's side (the same Swift account, the same S3 endpoint and credentials), and
  answers None otherwise; :func:`copy_data` then streams it through. The source stays.
- each write names its attempt (an upload, a staging or an import task): its temporary objects
  are its own, so a writer taken over as dead never shares or finishes another's partial data,
  and the caller commits only while the image is still that attempt's (``writer.commit_if``).
- ``read`` opens the data before it returns, so a missing object or an unreachable store raises
  (a ``GlanceError``: :func:`data_missing`, :func:`store_unavailable`) before a response
  starts; it then streams in bounded chunks (never a whole image in memory).
- ``delete`` removes the image's data and any partial attempt; missing data is not an error.
  A store whose data others can depend on (RBD clones) refuses with :func:`data_in_use`
  (409) and keeps it; ``check_deletable`` asks the same without deleting.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

from imageservice.errors import GlanceError

if TYPE_CHECKING:
    from images.storage.inspection import Detection

CHUNK_SIZE = 1024 * 1024


class Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1


@dataclass(frozen=True)
class WrittenData:
    """What a write learned while the bytes went by."""

    size: int
    checksum: str
    os_hash_algo: str
    os_hash_value: str
    virtual_size: int | None
    detection: Detection | None = None


@dataclass(frozen=True)
class StoredData:
    """Committed data of one image in a store, as its listing shows it."""

    image_id: str
    size: int
    modified: datetime


class StoreWrite(ABC):
    """One attempt at writing an image's data into a store."""

    @abstractmethod
    def write(self, chunk: bytes) -> None:
        """Append ``chunk`` (called from one thread, in order)."""

    @abstractmethod
    def commit(self) -> None:
        """Make the bytes written so far durable and the image's data in the store."""

    @abstractmethod
    def abort(self) -> None:
        """Give up the attempt, leaving nothing of it behind; safe to call after a failure."""


def new_attempt() -> str:
    """A fresh write attempt name."""
    return uuid.uuid4().hex


def data_missing(store_id: str, image_id: str) -> GlanceError:
    """What a download gets when the store has lost the image's data."""
    return GlanceError(404, f"Image {image_id} has no data in store {store_id}.")


def store_unavailable(store_id: str, reason: str) -> GlanceError:
    """What a request gets when a store cannot serve it (unreachable, refused credentials)."""
    return GlanceError(503, f"Store {store_id} is not available: {reason}")


# glance_store's InUseByStore, in Glance's words for an image delete.
IN_USE = (
    "The image cannot be deleted because it is in use through the backend store outside of Glance."
)


class DataInUse(GlanceError):
    """The store refuses to delete the data: something outside Glance uses it."""


def data_in_use(image_id: str) -> DataInUse:
    return DataInUse(409, f"Image {image_id} could not be deleted because it is in use: {IN_USE}")


class ImageStore(ABC):
    """One configured store (Glance's backend): a name, a type and the bytes of images.

    A driver class names the glance_store options of its section it reads (``OPTIONS``; any
    other is reported by a start-up warning) and the ones it cannot do without
    (``REQUIRED_OPTIONS``), and builds itself from them with ``from_options``, raising
    ``ValueError`` for a value it cannot use. It connects lazily: building a store costs
    nothing, and an unreachable store fails its requests, not the start.
    """

    type_name: ClassVar[str]
    OPTIONS: ClassVar[frozenset[str]] = frozenset()
    REQUIRED_OPTIONS: ClassVar[frozenset[str]] = frozenset()
    id: str
    description: str
    weight: int = 0

    @classmethod
    @abstractmethod
    def from_options(cls, name: str, options: Mapping[str, str]) -> ImageStore:
        """The store ``name`` of the configuration, from its section's options."""

    @classmethod
    def missing_requirements(cls) -> str | None:
        """What this process lacks to run the driver at all (system packages, with what to
        install), or None."""
        return None

    @abstractmethod
    def open_write(self, image_id: str, attempt: str, size: int | None = None) -> StoreWrite:
        """Start writing the image's data as ``attempt`` (hex digits, unique per writer); nothing
        is visible until the write commits. ``size``: the announced size, when there is one (a
        hint: the bytes written decide)."""

    @abstractmethod
    def place_file(self, image_id: str, path: Path, attempt: str) -> StoreWrite:
        """A write of ``attempt`` already holding the bytes of the local file ``path``, to
        commit or abort; ``path`` stays where it is."""

    def copy_from(self, source: ImageStore, image_id: str, attempt: str) -> StoreWrite | None:
        """A write of ``attempt`` already holding the image's data of ``source``, copied on the
        store's side without a byte through this process; None when this store cannot."""
        return None

    @abstractmethod
    def read(self, image_id: str, byte_range: ByteRange | None = None) -> Iterator[bytes]:
        """The image's bytes (or the inclusive ``byte_range`` of them), in bounded chunks."""

    @abstractmethod
    def has_data(self, image_id: str) -> bool:
        """Whether the store holds complete data for the image."""

    @abstractmethod
    def delete(self, image_id: str) -> None:
        """Remove the image's data and whatever unfinished writes of any attempt left."""

    @abstractmethod
    def sweep(self, is_live: Callable[[str, str], bool]) -> list[str]:
        """Remove what unfinished writes left (a process killed, a store down during
        ``abort``) for every ``(image_id, attempt)`` that ``is_live`` says is over; return the
        names removed. Committed data is never touched. A backend that cannot tell attempts
        apart passes ``attempt=""``: live then means any write of the image is live."""

    def check_deletable(self, image_id: str) -> None:  # noqa: B027 (most stores never refuse)
        """Raise :func:`data_in_use` when ``delete`` would refuse to remove the data."""

    @abstractmethod
    def listing(self) -> list[StoredData]:
        """Every image's committed data in the store (for the staging area's cleanup)."""

    @abstractmethod
    def url_for(self, image_id: str) -> str:
        """The location URL Glance would record for the image in this store."""

    @abstractmethod
    def prepare(self) -> str | None:
        """Make the store usable (directories, containers); a problem description, or None."""

    def properties(self) -> dict[str, object]:
        """The type-specific ``properties`` of ``GET /v2/info/stores/detail``."""
        return {}


class ChunkReader:
    """A ``Readable`` over an iterator of chunks, to feed one store's ``read`` into another's
    ``write``."""

    def __init__(self, chunks: Iterator[bytes]):
        self.chunks = chunks
        self.pending = b""

    def read(self, size: int, /) -> bytes:
        if not self.pending:
            self.pending = next(self.chunks, b"")
        chunk, self.pending = self.pending[:size], self.pending[size:]
        return chunk


TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", ""})


def integer_option(
    options: Mapping[str, str], name: str, default: int, minimum: int | None = None
) -> int:
    """An integer option of a store section (``default`` when unset or empty)."""
    text = options.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {text!r}") from None
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def boolean_option(options: Mapping[str, str], name: str) -> bool:
    """A boolean option of a store section, as oslo.config spells them (false when unset)."""
    text = options.get(name, "").strip().lower()
    if text not in TRUE_WORDS | FALSE_WORDS:
        raise ValueError(f"{name} must be true or false, got {options[name]!r}")
    return text in TRUE_WORDS


def copy_data(
    source: ImageStore, target: ImageStore, image_id: str, attempt: str, size: int
) -> StoreWrite:
    """The image's ``size`` bytes in ``source`` as a write of ``target`` ready to commit: a
    server-side copy when ``target`` can make one, else streamed through in bounded chunks."""
    copied = target.copy_from(source, image_id, attempt)
    if copied is not None:
        return copied
    sink = target.open_write(image_id, attempt)
    try:
        received = 0
        for chunk in source.read(image_id):
            received += len(chunk)
            sink.write(chunk)
        if received != size:
            # A source that changed or was cut short must not pass for the image's data.
            raise store_unavailable(source.id, f"it held {received} bytes, not {size}")
    except BaseException:
        sink.abort()
        raise
    return sink


def store_weight(options: Mapping[str, str]) -> int:
    """glance_store's ``weight`` option (the order of stores for downloads), default 0."""
    try:
        return int(options.get("weight", "0") or 0)
    except ValueError:
        raise ValueError(f"weight must be an integer, got {options['weight']!r}") from None


class UnavailableStore(ImageStore):
    """A configured store that cannot be built (unknown type, missing or bad option): it is
    listed, refuses every request with 503 and says why in the start-up check."""

    type_name = "unavailable"

    def __init__(self, store_id: str, reason: str):
        self.id = store_id
        self.reason = reason
        self.description = ""

    @classmethod
    def from_options(cls, name: str, options: Mapping[str, str]) -> ImageStore:
        raise ValueError("an unavailable store is not configured")

    def _refuse(self, *args, **kwargs):
        raise store_unavailable(self.id, self.reason)

    open_write = place_file = read = delete = url_for = listing = _refuse

    def sweep(self, is_live: Callable[[str, str], bool]) -> list[str]:
        return []

    def has_data(self, image_id: str) -> bool:
        return False

    def prepare(self) -> str | None:
        return f"{self.id}: {self.reason}"
