"""The S3 store (glance_store's ``s3`` backend): one object per image, named by its UUID, in one
bucket of Amazon S3 or any service speaking its API (Ceph RGW, Swift's s3api, MinIO).

Writes are multipart uploads streamed in parts of ``s3_store_large_object_chunk_size``, whether
or not the size is known (glance_store buffers an image of unknown size whole in memory). The
upload is the write attempt's own temporary object: S3 gives it an UploadId, its parts are
invisible, and only ``CompleteMultipartUpload`` on commit makes the object appear, at once.
An image that ends within its first part and below ``s3_store_large_object_size`` is sent as
one ``PutObject`` at commit instead (glance_store's single-part upload): that part is buffered
anyway, so the single request costs no extra memory.

Memory: a write holds at most ``max(2 × chunk size, WRITE_BUFFER_BYTES)`` of part buffers (20
MiB at the default 10 MiB chunks): the part it is filling and the parts uploading, by as many
threads (no more than ``s3_store_thread_pools``). The write lane waits while they are all busy,
which slows the sender instead of growing buffers; the buffers are refilled, not reallocated, and
one write's worth is kept for the next write of the process (``PART_BUFFERS``).

Every request has connect and read timeouts and a bounded number of attempts, so a store that
went away fails a write (503) within seconds to minutes and ``abort`` never hangs; what an abort
could not remove, ``sweep`` aborts later.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.utils import check_dns_name

from images.storage.base import (
    CHUNK_SIZE,
    ByteRange,
    ImageStore,
    StoreWrite,
    data_missing,
    store_unavailable,
    store_weight,
)
from imageservice.errors import GlanceError

logger = logging.getLogger(__name__)

MiB = 1024 * 1024
# glance_store's defaults and limits, in its units (MB for sizes).
LARGE_MB = 100
CHUNK_MB = 10
MIN_CHUNK_MB = 5  # S3 refuses smaller parts (but the last) at completion
DEFAULT_THREAD_POOLS = 10
MAX_PARTS = 10000  # S3's limit per multipart upload
URL_FORMATS = ("auto", "path", "virtual")
# Part buffers of one write (the part filling and the parts uploading), whatever
# s3_store_thread_pools says, and never fewer than two: one part uploads while the next fills.
# Two of the default 10 MiB keep a server worker streaming 5 GiB under 150 MiB RSS.
WRITE_BUFFER_BYTES = 20 * MiB
# A store that stops answering fails a request after the timeout, at most MAX_ATTEMPTS times
# (botocore's standard retry mode: connection errors, throttling and 5xx are retried).
CONNECT_TIMEOUT = 5
READ_TIMEOUT = 60
MAX_ATTEMPTS = 3
# Connections shared by every write and read of one store (botocore's default is 10).
MAX_POOL_CONNECTIONS = 50
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", ""})


class PartBuffers:
    """Part buffers kept between writes: of each size, as many as one write uses.

    Handing a 10 MiB buffer back to glibc raises its dynamic mmap threshold, after which freed
    1 MiB request chunks stay in its arenas: a worker's RSS then creeps up by 10–25 MiB with
    every S3 write. Buffers that are never freed leave the threshold alone."""

    def __init__(self, budget: int):
        self.budget = budget
        self.free: dict[int, list[bytearray]] = {}
        self.lock = threading.Lock()

    def take(self, size: int) -> bytearray:
        with self.lock:
            kept = self.free.get(size)
            if kept:
                return kept.pop()
        return bytearray(size)

    def give(self, buffers: list[bytearray]) -> None:
        with self.lock:
            for buffer in buffers:
                kept = self.free.setdefault(len(buffer), [])
                if len(kept) < max(2, self.budget // len(buffer)):
                    kept.append(buffer)


PART_BUFFERS = PartBuffers(WRITE_BUFFER_BYTES)


@dataclass(frozen=True)
class S3Store(ImageStore):
    type_name = "s3"
    OPTIONS = frozenset(
        {
            "s3_store_host",
            "s3_store_access_key",
            "s3_store_secret_key",
            "s3_store_bucket",
            "s3_store_create_bucket_on_put",
            "s3_store_bucket_url_format",
            "s3_store_region_name",
            "s3_store_large_object_size",
            "s3_store_large_object_chunk_size",
            "s3_store_thread_pools",
        }
    )
    REQUIRED_OPTIONS = frozenset(
        {"s3_store_host", "s3_store_access_key", "s3_store_secret_key", "s3_store_bucket"}
    )

    id: str
    endpoint: str
    bucket: str
    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    region: str = "us-east-1"
    url_format: str = "auto"
    create_bucket_on_put: bool = False
    large_object_size: int = LARGE_MB * MiB
    chunk_size: int = CHUNK_MB * MiB
    thread_pools: int = DEFAULT_THREAD_POOLS
    description: str = ""
    weight: int = 0

    @classmethod
    def from_options(cls, name: str, options: Mapping[str, str]) -> S3Store:
        url_format = options.get("s3_store_bucket_url_format", "").strip() or "auto"
        if url_format not in URL_FORMATS:
            raise ValueError(
                f"s3_store_bucket_url_format must be one of {', '.join(URL_FORMATS)}, "
                f"got {url_format!r}"
            )
        bucket = options["s3_store_bucket"].strip()
        if url_format == "virtual" and not check_dns_name(bucket):
            raise ValueError(f"bucket {bucket!r} cannot be a host name: use path addressing")
        return cls(
            name,
            endpoint_url(options["s3_store_host"]),
            bucket,
            options["s3_store_access_key"],
            options["s3_store_secret_key"],
            region=options.get("s3_store_region_name", "").strip() or "us-east-1",
            url_format=url_format,
            create_bucket_on_put=_boolean(options, "s3_store_create_bucket_on_put"),
            large_object_size=_megabytes(options, "s3_store_large_object_size", LARGE_MB, 0),
            chunk_size=_megabytes(
                options, "s3_store_large_object_chunk_size", CHUNK_MB, MIN_CHUNK_MB
            ),
            thread_pools=_integer(options, "s3_store_thread_pools", DEFAULT_THREAD_POOLS, 1),
            description=options.get("store_description", ""),
            weight=store_weight(options),
        )

    @cached_property
    def client(self) -> Any:
        """The boto3 client (thread-safe; made on first use, so building a store costs nothing)."""
        config = Config(
            # Without this, botocore hashes every part with SHA-256 to sign it whenever no
            # checksum header is sent (always here), over HTTPS too: 1.6 CPU seconds per GiB, the
            # dearest step of an upload after MD5 and the image digest. The signature still
            # covers the request; the bytes are checked by TLS where the endpoint is https.
            s3={"addressing_style": self.url_format, "payload_signing_enabled": False},
            connect_timeout=CONNECT_TIMEOUT,
            read_timeout=READ_TIMEOUT,
            retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
            max_pool_connections=MAX_POOL_CONNECTIONS,
            # boto3 >= 1.36 adds CRC32 checksums to every upload by default; many S3-compatible
            # services (Swift's s3api among them) ignore or refuse them. glance_store's default.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        session = boto3.session.Session(
            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key
        )
        return session.client(
            "s3", endpoint_url=self.endpoint, region_name=self.region, config=config
        )

    @property
    def parts_in_flight(self) -> int:
        """Parts one write uploads at once: threads of its pool, buffers but the filling one."""
        buffers = max(2, WRITE_BUFFER_BYTES // self.chunk_size)
        return min(self.thread_pools, buffers - 1)

    def open_write(self, image_id: str, attempt: str) -> S3Write:
        # S3 names the attempt itself: every multipart upload has its own UploadId and parts.
        return S3Write(self, image_id)

    def place_file(self, image_id: str, path: Path, attempt: str) -> S3Write:
        sink = self.open_write(image_id, attempt)
        try:
            with open(path, "rb") as handle:
                while chunk := handle.read(CHUNK_SIZE):
                    sink.write(chunk)
        except BaseException:
            sink.abort()
            raise
        return sink

    def read(self, image_id: str, byte_range: ByteRange | None = None) -> Iterator[bytes]:
        request = {"Bucket": self.bucket, "Key": image_id}
        if byte_range is not None:
            request["Range"] = f"bytes={byte_range.start}-{byte_range.end}"
        with self.talking():
            try:
                body = self.client.get_object(**request)["Body"]
            except ClientError as error:
                if _status(error) == 404:
                    raise data_missing(self.id, image_id) from None
                raise
        return ObjectBody(self, body)

    def has_data(self, image_id: str) -> bool:
        with self.talking():
            return _found(self.client.head_object, Bucket=self.bucket, Key=image_id)

    def delete(self, image_id: str) -> None:
        with self.talking():
            # A missing key is deleted quietly; 404 means no bucket, so no uploads either.
            if not _found(self.client.delete_object, Bucket=self.bucket, Key=image_id):
                return
            for upload in self.uploads(image_id):
                if upload["Key"] == image_id:
                    self.abort_upload(image_id, upload["UploadId"])

    def sweep(self, is_live: Callable[[str, str], bool]) -> list[str]:
        # ListMultipartUploads shows keys and UploadIds, nothing that tells attempts apart: an
        # unfinished upload is left while any write of its image is live.
        aborted = []
        with self.talking():
            for upload in self.uploads():
                key, upload_id = upload["Key"], upload["UploadId"]
                # A shared bucket may hold others' uploads: only image UUIDs are ours.
                if not _is_uuid(key) or is_live(key, ""):
                    continue
                self.abort_upload(key, upload_id)
                aborted.append(f"{key} upload {upload_id}")
        return aborted

    def uploads(self, prefix: str = "") -> Iterator[dict]:
        """The bucket's multipart uploads in progress (of keys starting with ``prefix``)."""
        pages = self.client.get_paginator("list_multipart_uploads")
        try:
            for page in pages.paginate(Bucket=self.bucket, Prefix=prefix):
                yield from page.get("Uploads", [])
        except ClientError as error:
            if _status(error) != 404:  # no bucket: no uploads
                raise

    def abort_upload(self, key: str, upload_id: str) -> bool:
        """Abort one multipart upload; False when it was already gone (completed or aborted)."""
        return _found(
            self.client.abort_multipart_upload, Bucket=self.bucket, Key=key, UploadId=upload_id
        )

    def url_for(self, image_id: str) -> str:
        # glance_store's form, s3[+https]://access:secret@host/bucket/key, without the
        # credentials: the location is shown to users and kept in the database.
        scheme, _, host = self.endpoint.partition("://")
        prefix = "s3+https" if scheme == "https" else "s3"
        return f"{prefix}://{host}/{self.bucket}/{image_id}"

    def prepare(self) -> str | None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as error:
            if _status(error) == 404 and self.create_bucket_on_put:
                return self._create_bucket()
            return f"{self.id}: {self._bucket_problem(error)}"
        except BotoCoreError as error:
            return f"{self.id}: cannot connect to {self.endpoint}: {error}"
        return None

    def _create_bucket(self) -> str | None:
        request: dict[str, Any] = {"Bucket": self.bucket}
        # us-east-1 is S3's unnamed default location: naming it is refused there.
        if self.region != "us-east-1":
            request["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self.client.create_bucket(**request)
        except (ClientError, BotoCoreError) as error:
            return f"{self.id}: cannot create bucket {self.bucket} at {self.endpoint}: {error}"
        return None

    def _bucket_problem(self, error: ClientError) -> str:
        status = _status(error)
        if status == 404:
            return (
                f"bucket {self.bucket} does not exist at {self.endpoint} "
                "(create it, or set s3_store_create_bucket_on_put = true)"
            )
        if status == 403:
            return (
                f"bucket {self.bucket} at {self.endpoint} answered 403 Forbidden: check "
                "s3_store_access_key and s3_store_secret_key, and the bucket's permissions"
            )
        return f"bucket {self.bucket} at {self.endpoint}: {_answer(error)}"

    def properties(self) -> dict[str, object]:
        # What Glance shows for an s3 store: its sizes in bytes, as glance_store holds them.
        return {
            "s3_store_large_object_size": self.large_object_size,
            "s3_store_large_object_chunk_size": self.chunk_size,
            "s3_store_thread_pools": self.thread_pools,
        }

    @contextmanager
    def talking(self) -> Iterator[None]:
        """Failures to reach or use the store, as ``store_unavailable`` (503)."""
        try:
            yield
        except ClientError as error:
            raise store_unavailable(self.id, _answer(error)) from error
        except BotoCoreError as error:
            raise store_unavailable(
                self.id, f"cannot connect to {self.endpoint}: {error}"
            ) from error


class S3Write(StoreWrite):
    """One multipart upload: parts of ``chunk_size`` bytes, uploaded by a few threads while
    the next one fills."""

    def __init__(self, store: S3Store, key: str):
        self.store = store
        self.key = key
        self.upload_id = self._start()
        # Part buffers are taken once (at most parts_in_flight + 1) and refilled in place:
        # fresh 10 MiB buffers per part leave the allocator holding far more than in use.
        self.filling: bytearray | None = None
        self.filled = 0
        self.spare: list[bytearray] = []
        self.next_part = 1
        self.sending: set[Future] = set()
        self.sent: dict[int, str] = {}  # part number → ETag
        self.pool = ThreadPoolExecutor(
            max_workers=store.parts_in_flight, thread_name_prefix=f"s3-{store.id}"
        )
        self.finished = False

    def _start(self) -> str:
        store = self.store
        with store.talking():
            try:
                return self._create_upload()
            except ClientError as error:
                # glance_store creates a missing bucket on the first put when told to.
                if _status(error) != 404 or not store.create_bucket_on_put:
                    raise
            problem = store.prepare()
            if problem is not None:
                raise store_unavailable(store.id, problem)
            return self._create_upload()

    def _create_upload(self) -> str:
        store = self.store
        created = store.client.create_multipart_upload(Bucket=store.bucket, Key=self.key)
        return created["UploadId"]

    def write(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view:
            if self.filling is None:
                self.filling = (
                    self.spare.pop() if self.spare else PART_BUFFERS.take(self.store.chunk_size)
                )
            count = min(len(view), len(self.filling) - self.filled)
            self.filling[self.filled : self.filled + count] = view[:count]
            self.filled += count
            view = view[count:]
            if self.filled == len(self.filling):
                self._send_filling()

    def _take_filling(self) -> bytearray:
        """The bytes of the part being filled, which is then empty."""
        part = self.filling if self.filling is not None else bytearray()
        del part[self.filled :]  # only the last part is short
        self.filling, self.filled = None, 0
        return part

    def _send_filling(self) -> None:
        if self.next_part > MAX_PARTS:
            limit = MAX_PARTS * self.store.chunk_size
            raise GlanceError(
                413,
                f"The image is larger than store {self.store.id} takes ({MAX_PARTS} parts of "
                f"s3_store_large_object_chunk_size, {limit} bytes).",
            )
        self._settle(timeout=0)  # a failed part ends the write at once
        # Waiting here holds the write lane, so the pipeline stops reading: memory stays flat.
        while len(self.sending) >= self.store.parts_in_flight:
            self._settle(FIRST_COMPLETED)
        self.sending.add(self.pool.submit(self._upload_part, self.next_part, self._take_filling()))
        self.next_part += 1

    def _upload_part(self, number: int, part: bytearray) -> tuple[int, str, bytearray]:
        store = self.store
        with store.talking():
            uploaded = store.client.upload_part(
                Bucket=store.bucket,
                Key=self.key,
                UploadId=self.upload_id,
                PartNumber=number,
                Body=part,
            )
        return number, uploaded["ETag"], part

    def _settle(self, return_when: str = ALL_COMPLETED, timeout: float | None = None) -> None:
        """Wait for part uploads (the first to finish, or all); raise the first failure."""
        done, self.sending = wait(self.sending, timeout, return_when)
        for future in done:
            number, etag, part = future.result()
            self.sent[number] = etag
            if len(part) == self.store.chunk_size:
                self.spare.append(part)

    def commit(self) -> None:
        store = self.store
        if self.next_part == 1 and (self.filled < store.large_object_size or not self.filled):
            self._put_whole()
        else:
            if self.filled:
                self._send_filling()
            self._settle()
            self._complete()
        self.finished = True
        self.pool.shutdown()
        self._give_back()

    def _give_back(self) -> None:
        """The write's whole-size buffers, to the next write (parts still referenced by
        cancelled uploads are left to the garbage collector)."""
        buffers = self.spare + ([self.filling] if self.filling is not None else [])
        PART_BUFFERS.give([buffer for buffer in buffers if len(buffer) == self.store.chunk_size])
        self.filling, self.filled, self.spare = None, 0, []

    def _put_whole(self) -> None:
        store = self.store
        with store.talking():
            # The upload goes first: if delete or sweep aborted it meanwhile, this attempt was
            # given up, and its bytes must not become the image's.
            if not store.abort_upload(self.key, self.upload_id):
                raise store_unavailable(store.id, f"the upload of {self.key} was aborted meanwhile")
            store.client.put_object(Bucket=store.bucket, Key=self.key, Body=self._take_filling())

    def _complete(self) -> None:
        store = self.store
        parts = [{"PartNumber": number, "ETag": etag} for number, etag in sorted(self.sent.items())]
        with store.talking():
            store.client.complete_multipart_upload(
                Bucket=store.bucket,
                Key=self.key,
                UploadId=self.upload_id,
                MultipartUpload={"Parts": parts},
            )

    def abort(self) -> None:
        if self.finished:
            return
        self.finished = True
        # Parts still uploading would outlive an abort sent before them.
        self.pool.shutdown(wait=True, cancel_futures=True)
        self._give_back()
        try:
            with self.store.talking():
                self.store.abort_upload(self.key, self.upload_id)
        except GlanceError as error:
            # The store is gone: the upload stays until sweep() finds it over.
            logger.warning("abort of %s upload %s: %s", self.key, self.upload_id, error)


class ObjectBody:
    """The bytes of one GetObject response in chunks; ``close`` releases the connection even
    when the response is dropped unread (Django calls it)."""

    def __init__(self, store: S3Store, body: Any):
        self.store = store
        self.body = body
        self.chunks = body.iter_chunks(CHUNK_SIZE)

    def __iter__(self) -> ObjectBody:
        return self

    def __next__(self) -> bytes:
        try:
            with self.store.talking():
                return next(self.chunks)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self.body.close()


def endpoint_url(host: str) -> str:
    """``s3_store_host`` as an endpoint URL: glance_store takes a bare host as plain HTTP."""
    host = host.strip().rstrip("/")
    if not host:
        raise ValueError("s3_store_host is empty")
    if not host.startswith(("http://", "https://")):
        if "://" in host:
            raise ValueError(f"s3_store_host must be http:// or https://, got {host!r}")
        host = f"http://{host}"
    return host


def _integer(options: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    text = options.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {text!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def _megabytes(options: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    """A size option in glance_store's unit, MB, as bytes."""
    return _integer(options, name, default, minimum) * MiB


def _boolean(options: Mapping[str, str], name: str) -> bool:
    text = options.get(name, "").strip().lower()
    if text not in TRUE_WORDS | FALSE_WORDS:
        raise ValueError(f"{name} must be true or false, got {options[name]!r}")
    return text in TRUE_WORDS


def _found(operation: Callable[..., Any], **request: Any) -> bool:
    """Send a request; False when the store answers 404 (no such key, upload or bucket)."""
    try:
        operation(**request)
    except ClientError as error:
        if _status(error) == 404:
            return False
        raise
    return True


def _status(error: ClientError) -> int | None:
    return error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")


def _answer(error: ClientError) -> str:
    details = error.response.get("Error", {})
    return (
        f"{error.operation_name} answered {_status(error)} {details.get('Code', '')}: "
        f"{details.get('Message', '')}"
    ).strip()


def _is_uuid(key: str) -> bool:
    try:
        return str(uuid.UUID(key)) == key
    except ValueError:
        return False
