"""HTTP calls to the benchmark server as one of its demo users, on plain `http.client`."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.procfs import child_pids, cpu_seconds
from common.server import BENCH_TOKEN, HOST

REQUEST_TIMEOUT = 60.0  # per socket operation (the server fsyncs 1 GiB before answering)
TRANSFER_TIME_LIMIT = 30.0  # per 1 GiB request: below ~36 MB/s it is abandoned as failed
SENDFILE_SLICE = 64 * 1024 * 1024  # a Content-Length body goes out in sendfile(2) calls this large
WARMUP_REQUESTS_MAX = 400
WARMUP_CPU_SECONDS = 0.03  # a worker's first request costs more than this


# Writes a PUT body on the socket, giving up once past the deadline (time.monotonic()).
BodySender = Callable[[socket.socket, float], None]


class BenchError(Exception):
    """A measured request did not do what it should; the run reports it and fails."""


# What a failing measured request raises: the phase records it and the run goes on to clean up.
TRANSFER_ERRORS = (OSError, http.client.HTTPException, BenchError)


def error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def check_deadline(deadline: float, limit: float = TRANSFER_TIME_LIMIT) -> None:
    if time.monotonic() > deadline:
        raise BenchError(f"abandoned after {limit:g} s")


@dataclass(frozen=True)
class Client:
    """A demo user of the server: its port and that user's token."""

    port: int
    token: str = BENCH_TOKEN

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(HOST, self.port, timeout=REQUEST_TIMEOUT)

    def send_json(
        self,
        connection: http.client.HTTPConnection,
        method: str,
        path: str,
        document: dict | None = None,
    ) -> tuple[int, Any]:
        """One request on ``connection``: the status and the parsed body (raw bytes if not JSON)."""
        headers = {"X-Auth-Token": self.token}
        body = None
        if document is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(document).encode()
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        try:
            return response.status, (json.loads(payload) if payload else None)
        except ValueError:
            return response.status, payload[:300]

    def request_json(self, method: str, path: str, document: dict | None = None) -> tuple[int, Any]:
        connection = self.connect()
        try:
            return self.send_json(connection, method, path, document)
        finally:
            connection.close()

    def create_image(self, name: str) -> str:
        document = {"name": name, "disk_format": "raw", "container_format": "bare"}
        status, image = self.request_json("POST", "/v2/images", document)
        if status != 201:
            raise BenchError(f"POST /v2/images answered {status}: {image}")
        return image["id"]

    def delete_image(self, image_id: str) -> None:
        # Cleanup after a failure: a second error here would hide the first.
        with contextlib.suppress(OSError, http.client.HTTPException):
            self.request_json("DELETE", f"/v2/images/{image_id}")

    def warm_every_worker(self, master: int) -> int:
        """Send lists on new connections until every gunicorn worker has served one; how many.

        A new connection lands on whichever worker accepts first, so this goes on until each
        worker's CPU time shows it served a request (or the bound): none then imports its code
        during a measured phase.
        """
        workers = child_pids(master)
        before = {pid: cpu_seconds(pid) for pid in workers}
        requests = 0
        while requests < WARMUP_REQUESTS_MAX and not all(
            cpu_seconds(pid) - before[pid] >= WARMUP_CPU_SECONDS for pid in workers
        ):
            connection = self.connect()
            headers = {"X-Auth-Token": self.token, "Connection": "close"}
            connection.request("GET", "/v2/images?limit=1", headers=headers)
            connection.getresponse().read()
            connection.close()
            requests += 1
        return requests

    def put_with_length(
        self, path: str, source: Path, size: int, progress: Callable[[int], None] | None = None
    ) -> None:
        """PUT ``size`` bytes of ``source`` with Content-Length, sent with sendfile(2)."""

        def send(sock: socket.socket, deadline: float) -> None:
            sent_total = 0
            with source.open("rb") as handle:
                while sent_total < size:
                    check_deadline(deadline)
                    count = min(SENDFILE_SLICE, size - sent_total)
                    sent = sock.sendfile(handle, sent_total, count)
                    if not sent:
                        raise BenchError("sendfile sent nothing")
                    sent_total += sent
                    if progress:
                        progress(sent)

        self._put(path, ("Content-Length", str(size)), send)

    def put_chunked(
        self, path: str, block: bytes, pieces: int, progress: Callable[[int], None] | None = None
    ) -> None:
        """PUT ``pieces`` copies of ``block`` with chunked transfer encoding, one chunk each."""
        chunk_header = b"%x\r\n" % len(block)

        def send(sock: socket.socket, deadline: float) -> None:
            sock.sendall(chunk_header)
            for number in range(pieces):
                check_deadline(deadline)
                sock.sendall(block)
                if progress:
                    progress(len(block))
                # The CRLF closing this chunk and the next chunk's size line (or the last chunk).
                sock.sendall(b"\r\n" + (chunk_header if number < pieces - 1 else b"0\r\n\r\n"))

        self._put(path, ("Transfer-Encoding", "chunked"), send)

    def _put(self, path: str, framing: tuple[str, str], send_body: BodySender) -> None:
        deadline = time.monotonic() + TRANSFER_TIME_LIMIT
        connection = self.connect()
        connection.putrequest("PUT", path, skip_accept_encoding=True)
        connection.putheader("X-Auth-Token", self.token)
        connection.putheader("Content-Type", "application/octet-stream")
        connection.putheader(*framing)
        connection.endheaders()
        sending = None
        try:
            send_body(connection.sock, deadline)
        except OSError as error:  # the server may have answered early (an error) and closed
            sending = error
        except BaseException:  # abandoned (time limit, Ctrl-C)
            connection.close()
            raise
        _finish_put(connection, sending)


def _finish_put(connection: http.client.HTTPConnection, sending: OSError | None) -> None:
    """Read the answer to a PUT (its 204 is the measured end), or surface the send error."""
    try:
        response = connection.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException):
        if sending is not None:
            raise sending from None
        raise
    finally:
        connection.close()
    if response.status != 204:
        raise BenchError(f"PUT answered {response.status}: {body[:300]!r}")
