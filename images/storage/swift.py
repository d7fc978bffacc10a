"""The Swift store (glance_store's ``swift`` backend): every image in one container of one
account (glance_store's single-tenant store).

An image's data is a Static Large Object manifest named ``<image_id>``, whose segments are the
objects ``<image_id>-<attempt>-00001``… of the attempt that wrote it, in the same container
(``images.storage.swift_upload``). The manifest PUT is the commit: nothing answers under the
image's name before it, and it copies no data. Data that Glance wrote is read as it is: a
Dynamic Large Object (a manifest with ``X-Object-Manifest: <container>/<image_id>-`` over
segments ``<image_id>-00001``…) or one plain object; a GET of the manifest serves either.

Every request has a timeout, so an unreachable Swift fails requests (503) instead of hanging
them; what a write could not remove then is left for ``sweep``.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cached_property
from http import HTTPStatus
from pathlib import Path
from urllib.parse import unquote, urlsplit

from keystoneauth1 import exceptions as keystone_errors
from keystoneauth1 import session as keystone_session
from keystoneauth1.identity import v3 as keystone_v3
from swiftclient import ClientException, Connection

from images.storage.base import (
    CHUNK_SIZE,
    ByteRange,
    ImageStore,
    StoredData,
    data_missing,
    store_unavailable,
)
from images.storage.swift_options import SWIFT_OPTIONS, SwiftSettings, swift_settings
from images.storage.swift_upload import (
    ATTEMPT_OBJECT,
    MANIFEST_SEGMENTS,
    MARKER,
    Segment,
    SegmentCopy,
    SegmentedWrite,
    manifest_json,
    segment_name,
)
from imageservice.errors import GlanceError

logger = logging.getLogger(__name__)

# Seconds for a connection or any read or write on it to make progress.
REQUEST_TIMEOUT = 30.0
# For requests that can be sent again (never a streamed segment): a Swift proxy restarting or
# briefly overloaded answers the second try.
RETRIES = 2
BACKOFF_SECONDS = 0.5
# requests' exceptions (what swiftclient raises for the network) are OSErrors.
TRANSPORT_ERRORS = (OSError, keystone_errors.ClientException)
UNREACHABLE = (OSError, keystone_errors.ConnectionError)
# Swift answers a server-side COPY only once the copy is written: a segment's request may take
# this long per byte on top of the usual timeout (a slow rate, so a busy cluster is not cut off).
COPY_SECONDS_PER_BYTE = 1 / (10 * 1024 * 1024)


class SwiftStore(ImageStore):
    type_name = "swift"
    OPTIONS = SWIFT_OPTIONS
    # The account comes from the section or from swift_store_config_file: from_options says
    # what is missing.
    REQUIRED_OPTIONS = frozenset()

    def __init__(self, store_id: str, settings: SwiftSettings):
        self.id = store_id
        self.settings = settings
        self.description = settings.description
        self.weight = settings.weight
        self.request_timeout = REQUEST_TIMEOUT
        self.tokens = _Tokens()

    @classmethod
    def from_options(cls, name: str, options: Mapping[str, str]) -> SwiftStore:
        return cls(name, swift_settings(options))

    @property
    def container(self) -> str:
        return self.settings.container

    @property
    def large_object_size(self) -> int:
        return self.settings.large_object_size

    @property
    def large_object_chunk_size(self) -> int:
        return self.settings.large_object_chunk_size

    # --- the contract --------------------------------------------------------------------

    def open_write(self, image_id: str, attempt: str, size: int | None = None) -> SegmentedWrite:
        return SegmentedWrite(self, image_id, attempt)

    def place_file(self, image_id: str, path: Path, attempt: str) -> SegmentedWrite:
        write = SegmentedWrite(self, image_id, attempt)
        try:
            with open(path, "rb") as handle:
                while chunk := handle.read(CHUNK_SIZE):
                    write.write(chunk)
            write.finish()
        except BaseException:
            write.abort()
            raise
        return write

    def copy_from(self, source: ImageStore, image_id: str, attempt: str) -> SegmentCopy | None:
        if not isinstance(source, SwiftStore) or not self.same_account(source):
            return None
        return SegmentCopy(self, image_id, attempt, source.segments_of(image_id))

    def same_account(self, other: SwiftStore) -> bool:
        """Whether ``other`` keeps its containers in this store's account, reached the same
        way: then Swift copies between them itself."""
        mine, theirs = self.settings, other.settings
        return (mine.account, mine.endpoint, mine.region, mine.endpoint_type) == (
            theirs.account,
            theirs.endpoint,
            theirs.region,
            theirs.endpoint_type,
        )

    def read(self, image_id: str, byte_range: ByteRange | None = None) -> Iterator[bytes]:
        # Swift applies a range across the segments of a large object itself.
        headers = {"Range": f"bytes={byte_range.start}-{byte_range.end}"} if byte_range else None
        connection = self.connection()
        with self._talking(image_id):
            response_headers, body = connection.get_object(
                self.container, image_id, resp_chunk_size=CHUNK_SIZE, headers=headers
            )
        length = response_headers.get("content-length")
        return self._stream(connection, body, None if length is None else int(length))

    def has_data(self, image_id: str) -> bool:
        return self._head(self.connection(), image_id) is not None

    def delete(self, image_id: str) -> None:
        connection = self.connection()
        headers = self._head(connection, image_id)
        if headers is not None:
            self._delete_data(connection, image_id, headers)
        # Whatever attempts left, committed or not (and Glance's DLO segments: same prefix).
        for name in self._names(connection, prefix=f"{image_id}-"):
            self._delete(connection, name)

    def sweep(self, is_live: Callable[[str, str], bool]) -> list[str]:
        connection = self.connection()
        attempts: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for name in self._names(connection):
            if match := ATTEMPT_OBJECT.match(name):
                key = (match["image_id"], match["attempt"])
                attempts.setdefault(key, []).append((name, match["part"]))
        removed = []
        for (image_id, attempt), objects in attempts.items():
            if is_live(image_id, attempt):
                continue
            # Read after is_live: an attempt that committed since is referenced by now.
            committed = attempt in self._committed_attempts(connection, image_id)
            for name, part in objects:
                if committed and part != MARKER:
                    continue
                self._delete(connection, name)
                removed.append(name)
        return removed

    def listing(self) -> list[StoredData]:
        connection = self.connection()
        with self._talking():
            try:
                _, entries = connection.get_container(self.container, full_listing=True)
            except ClientException as error:
                if error.http_status != 404:
                    raise
                return []
        return [
            StoredData(
                entry["name"],
                int(entry["bytes"]),
                datetime.fromisoformat(entry["last_modified"]).replace(tzinfo=UTC),
            )
            for entry in entries
            if _is_uuid(entry["name"])
        ]

    def url_for(self, image_id: str) -> str:
        # Glance's credential-free form (what it records with swift_store_config_file): the
        # account is named by its reference, never written into the location.
        return f"swift+config://{self.settings.reference}/{self.container}/{image_id}"

    def prepare(self) -> str | None:
        connection = self.connection()
        try:
            problem = self._container_problem(connection) or self._cluster_problem(connection)
        except (ClientException, *TRANSPORT_ERRORS) as error:
            problem = self.describe(error)
        return None if problem is None else f"{self.id}: {problem}"

    def properties(self) -> dict[str, object]:
        # What Glance shows for a swift store (sizes in bytes); never the account.
        return {
            "container": self.container,
            "large_object_size": self.large_object_size,
            "large_object_chunk_size": self.large_object_chunk_size,
        }

    # --- connections and errors --------------------------------------------------------------

    def connection(self, retries: int = RETRIES, timeout: float | None = None) -> Connection:
        """A new connection (one per thread or write: swiftclient's are not thread-safe)."""
        settings = self.settings
        common = {
            "retries": retries,
            "starting_backoff": BACKOFF_SECONDS,
            "max_backoff": 4 * BACKOFF_SECONDS,
            "timeout": timeout or self.request_timeout,
            "insecure": settings.insecure,
            "cacert": settings.cacert,
        }
        os_options = {"object_storage_url": settings.endpoint} if settings.endpoint else {}
        if settings.account.auth_version == "3":
            os_options |= {
                "service_type": settings.service_type,
                "endpoint_type": settings.endpoint_type.removesuffix("URL"),
                "region_name": settings.region,
            }
            return Connection(session=self.keystone, os_options=os_options, **common)
        account = settings.account
        return _TempauthConnection(
            self.tokens,
            authurl=account.auth_address,
            user=account.user,
            key=account.key,
            auth_version="1",
            os_options=os_options,
            **common,
        )

    @cached_property
    def keystone(self) -> keystone_session.Session:
        """Keystone v3 (the session renews its token before it expires, and on a 401)."""
        account = self.settings.account
        project, user = account.project_and_user
        plugin = keystone_v3.Password(
            auth_url=account.auth_address,
            username=user,
            password=account.key,
            project_name=project,
            user_domain_id=account.user_domain_id,
            user_domain_name=account.user_domain_name,
            project_domain_id=account.project_domain_id,
            project_domain_name=account.project_domain_name,
        )
        verify = False if self.settings.insecure else (self.settings.cacert or True)
        return keystone_session.Session(auth=plugin, verify=verify, timeout=self.request_timeout)

    def describe(self, error: BaseException) -> str:
        """What went wrong, in words for an operator; never the credentials."""
        status = getattr(error, "http_status", None)
        if status == 401:
            return f"cannot authenticate at {self.settings.account.auth_address}: {_status(401)}"
        if isinstance(error, ClientException):
            return f"{error.msg}: {_status(status)}" if status else error.msg
        if isinstance(error, UNREACHABLE):
            return f"cannot connect to {self._where(error)}: {_cause(error)}"
        return str(error)

    def unavailable(self, error: BaseException) -> GlanceError:
        return store_unavailable(self.id, self.describe(error))

    def unavailable_because(self, reason: str) -> GlanceError:
        return store_unavailable(self.id, reason)

    @contextmanager
    def _talking(self, image_id: str | None = None) -> Iterator[None]:
        """Swift's and the network's failures as the contract's errors; a 404 is
        :func:`data_missing` when the request was for ``image_id``'s data."""
        try:
            yield
        except ClientException as error:
            if error.http_status == 404 and image_id is not None:
                raise data_missing(self.id, image_id) from error
            raise self.unavailable(error) from error
        except TRANSPORT_ERRORS as error:
            raise self.unavailable(error) from error

    def _where(self, error: BaseException) -> str:
        request = getattr(error, "request", None)
        address = urlsplit(getattr(request, "url", None) or self.settings.account.auth_address)
        return f"{address.scheme}://{address.netloc}"

    def _no_container(self) -> str:
        return (
            f"container {self.container} does not exist and "
            "swift_store_create_container_on_put is false"
        )

    # --- requests ------------------------------------------------------------------------

    def _stream(self, connection: Connection, body, length: int | None) -> Iterator[bytes]:
        received = 0
        try:
            for chunk in body:
                received += len(chunk)
                yield chunk
        except Exception as error:
            raise self.unavailable(error) from error
        finally:
            body.close()
            connection.close()
        # A connection closed early must not pass for the end of the image.
        if length is not None and received < length:
            raise self.unavailable_because(f"the download ended after {received} of {length} bytes")

    def _head(self, connection: Connection, name: str) -> dict[str, str] | None:
        """The object's headers, or None when it does not exist."""
        try:
            return connection.head_object(self.container, name)
        except ClientException as error:
            if error.http_status == 404:
                return None
            raise self.unavailable(error) from error
        except TRANSPORT_ERRORS as error:
            raise self.unavailable(error) from error

    def _names(self, connection: Connection, prefix: str = "", container: str = "") -> list[str]:
        try:
            _, listing = connection.get_container(
                container or self.container, prefix=prefix or None, full_listing=True
            )
        except ClientException as error:
            if error.http_status == 404:
                return []
            raise self.unavailable(error) from error
        except TRANSPORT_ERRORS as error:
            raise self.unavailable(error) from error
        return [entry["name"] for entry in listing]

    def _delete(self, connection: Connection, name: str, container: str = "") -> None:
        """Delete one object; one that is gone already is fine."""
        try:
            connection.delete_object(container or self.container, name)
        except ClientException as error:
            if error.http_status != 404:
                raise self.unavailable(error) from error
        except TRANSPORT_ERRORS as error:
            raise self.unavailable(error) from error

    def _delete_data(self, connection: Connection, image_id: str, headers: dict[str, str]) -> None:
        if headers.get("x-static-large-object", "").lower() == "true":
            try:
                # Swift deletes the segments with the manifest, on its side.
                connection.delete_object(
                    self.container, image_id, query_string="multipart-manifest=delete"
                )
                return
            except ClientException as error:
                # 400: more sub-manifests than Swift deletes at once; the prefix listing of
                # delete() removes the segments then.
                if error.http_status not in (400, 404):
                    raise self.unavailable(error) from error
            except TRANSPORT_ERRORS as error:
                raise self.unavailable(error) from error
        self._delete(connection, image_id)
        if manifest := headers.get("x-object-manifest"):
            # A DLO (as Glance writes them): its segments are whatever has its prefix.
            container, _, prefix = unquote(manifest).partition("/")
            for name in self._names(connection, prefix=prefix, container=container):
                self._delete(connection, name, container=container)

    def _committed_attempts(self, connection: Connection, image_id: str) -> set[str]:
        """The attempts whose segments the image's committed SLO manifest names."""
        headers = self._head(connection, image_id)
        if headers is None or headers.get("x-static-large-object", "").lower() != "true":
            return set()
        with self._talking():
            _, body = connection.get_object(
                self.container, image_id, query_string="multipart-manifest=get"
            )
        names = (entry["name"].rpartition("/")[2] for entry in json.loads(body))
        return {match["attempt"] for name in names if (match := ATTEMPT_OBJECT.match(name))}

    def _container_problem(self, connection: Connection) -> str | None:
        try:
            connection.head_container(self.container)
            return None
        except ClientException as error:
            if error.http_status != 404:
                raise
        if not self.settings.create_container:
            return self._no_container()
        connection.put_container(self.container)
        return None

    def _cluster_problem(self, connection: Connection) -> str | None:
        """What this layout needs of the cluster's /info: SLO, and segments it accepts."""
        try:
            info = connection.get_capabilities()
        except ClientException:
            return None  # /info may be switched off (expose_info = false)
        if "slo" not in info:
            return "Swift has no Static Large Object support (the slo middleware)"
        max_file_size = info.get("swift", {}).get("max_file_size")
        biggest = max(self.large_object_size, self.large_object_chunk_size)
        if max_file_size and biggest > max_file_size:
            return (
                f"segments of {biggest} bytes exceed Swift's max_file_size ({max_file_size}): "
                "lower swift_store_large_object_size or swift_store_large_object_chunk_size"
            )
        if info["slo"].get("max_manifest_segments", MANIFEST_SEGMENTS) < MANIFEST_SEGMENTS:
            return f"Swift's slo max_manifest_segments is below {MANIFEST_SEGMENTS}"
        return None

    # --- server-side copies ------------------------------------------------------------------

    def segments_of(self, image_id: str) -> list[Segment]:
        """The segments holding the image's data, in order, named ``<container>/<object>``:
        those of its SLO manifest (sub-manifests followed), of a Glance DLO, or the one plain
        object."""
        connection = self.connection()
        headers = self._head(connection, image_id)
        if headers is None:
            raise data_missing(self.id, image_id)
        if headers.get("x-static-large-object", "").lower() == "true":
            return self._manifest_segments(connection, self.container, image_id)
        if manifest := headers.get("x-object-manifest"):
            container, _, prefix = unquote(manifest).partition("/")
            with self._talking():
                _, entries = connection.get_container(container, prefix=prefix, full_listing=True)
            return [
                Segment(f"{container}/{entry['name']}", entry["hash"], int(entry["bytes"]))
                for entry in sorted(entries, key=lambda entry: entry["name"])
            ]
        return [
            Segment(
                f"{self.container}/{image_id}",
                headers.get("etag"),
                int(headers.get("content-length", 0)),
            )
        ]

    def _manifest_segments(
        self, connection: Connection, container: str, name: str
    ) -> list[Segment]:
        with self._talking(name):
            _, body = connection.get_object(container, name, query_string="multipart-manifest=get")
        segments = []
        for entry in json.loads(body):
            path = entry["name"].lstrip("/")
            if entry.get("range"):
                raise self.unavailable_because(f"{path} is a ranged segment, not copied whole")
            if entry.get("sub_slo"):
                inner, _, inner_name = path.partition("/")
                segments += self._manifest_segments(connection, inner, inner_name)
            else:
                segments.append(Segment(path, entry.get("hash"), int(entry["bytes"])))
        return segments

    def copy_segment(self, source: Segment, name: str) -> None:
        """Swift copies ``source`` (``<container>/<object>`` of this account) to ``name`` in
        this store's container; sent again on a failure (the copy replaces the same name)."""
        container, _, source_name = source.name.partition("/")
        timeout = self.request_timeout + source.size * COPY_SECONDS_PER_BYTE
        connection = self.connection(timeout=timeout)
        with self._talking():
            connection.copy_object(container, source_name, destination=f"/{self.container}/{name}")

    # --- what a SegmentedWrite asks of its store -------------------------------------------

    def put_marker(self, name: str) -> None:
        """The object that tells ``sweep`` an attempt began; creates the container when
        ``swift_store_create_container_on_put`` allows (glance_store does it on each put)."""
        connection = self.connection()
        with self._talking():
            try:
                connection.put_object(self.container, name, "")
            except ClientException as error:
                if error.http_status != 404:
                    raise
                if not self.settings.create_container:
                    raise self.unavailable_because(self._no_container()) from error
                connection.put_container(self.container)
                connection.put_object(self.container, name, "")

    def put_empty_segment(self, image_id: str, attempt: str) -> Segment:
        """The one segment of an empty image (a manifest names at least one)."""
        name = segment_name(image_id, attempt, 1)
        with self._talking():
            etag = self.connection().put_object(self.container, name, "")
        return Segment(name, etag, 0)

    def put_submanifest(self, name: str, segments: list[Segment]) -> Segment:
        self._put_manifest(name, segments)
        return Segment(name, None, sum(segment.size for segment in segments))

    def put_manifest(self, image_id: str, segments: list[Segment]) -> None:
        self._put_manifest(image_id, segments)

    def _put_manifest(self, name: str, segments: list[Segment]) -> None:
        # Swift checks each segment's size and ETag against the manifest before it answers.
        with self._talking():
            self.connection().put_object(
                self.container,
                name,
                manifest_json(self.container, segments),
                content_type="application/octet-stream",
                query_string="multipart-manifest=put",
            )

    def remove_quietly(self, names: list[str]) -> None:
        """Delete what an attempt wrote; stop at the first failure and leave the rest for
        ``sweep`` (an unreachable store must not hold up an abort)."""
        connection = self.connection(retries=0)
        for name in names:
            try:
                connection.delete_object(self.container, name)
            except ClientException as error:
                if error.http_status == 404:
                    continue
                logger.warning("%s: left %s for sweep: %s", self.id, name, self.describe(error))
                return
            except TRANSPORT_ERRORS as error:
                logger.warning("%s: left %s for sweep: %s", self.id, name, self.describe(error))
                return


class _Tokens:
    """The last tempauth token of a store, shared by its connections (two strings, no
    connection state)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.url: str | None = None
        self.token: str | None = None

    def current(self) -> tuple[str | None, str | None]:
        with self.lock:
            return self.url, self.token

    def remember(self, url: str, token: str) -> None:
        with self.lock:
            self.url, self.token = url, token


class _TempauthConnection(Connection):
    """A connection that starts with the store's last token and shares the ones it gets
    (swiftclient authenticates again on a 401)."""

    def __init__(self, tokens: _Tokens, **options):
        url, token = tokens.current()
        super().__init__(preauthurl=url, preauthtoken=token, **options)
        self.tokens = tokens

    def get_auth(self) -> tuple[str, str]:
        url, token = super().get_auth()
        self.tokens.remember(url, token)
        return url, token


def _is_uuid(name: str) -> bool:
    try:
        return str(uuid.UUID(name)) == name
    except ValueError:
        return False


def _status(code: int) -> str:
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return str(code)


def _cause(error: BaseException) -> str:
    """The innermost reason of a network error ("Connection refused"), not urllib3's layers."""
    seen: set[int] = set()
    current: BaseException | None = error
    last = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        last = current
        if isinstance(current, OSError) and current.strerror:
            return current.strerror
        nested = getattr(current, "reason", None)
        if not isinstance(nested, BaseException):
            nested = next((arg for arg in current.args if isinstance(arg, BaseException)), None)
        current = nested or current.__cause__ or current.__context__
    return str(last)
