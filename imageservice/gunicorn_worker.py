"""The gunicorn worker class ``serve`` runs: gthread with two guards, for slow and for stopping
clients (docs/deployment.md).

- **Headers before a thread.** gthread hands a connection to one of its few threads as soon as a
  byte arrives, and that thread then blocks until the headers are complete: a handful of clients
  that never finish their headers hold every thread and the API stops answering. Here the
  worker's main loop gathers the request line and headers without blocking; a thread takes the
  connection only once they are complete, and a client that has not finished them within
  ``REQUEST_HEADER_TIMEOUT`` seconds is disconnected.
- **Uploads end cleanly on stop.** After SIGTERM, requests in flight may finish during most of
  the graceful timeout; then the reading side of every connection still being served is shut
  down, so an upload still receiving its body fails through its own error path (image back to
  ``queued``, partial data removed) before the arbiter would SIGKILL the worker mid-write.

It relies on gthread's internals, which is why gunicorn is pinned to one version.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import threading
import time
from collections import deque
from functools import partial

from django.conf import settings
from gunicorn.workers.gthread import TConn, ThreadWorker

HEADERS_END = b"\r\n\r\n"
READ_SIZE = 65536
# Whatever gunicorn's request limits allow at most; past it the parser answers the error itself.
UNLIMITED_HEADERS = 1024 * 1024


class ImageServiceWorker(ThreadWorker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.gathering: deque[TConn] = deque()  # oldest first, so deadlines stay in order
        self.serving: set[TConn] = set()
        self.serving_lock = threading.Lock()
        self.abort_at: float | None = None
        self.aborted = False
        cfg = self.cfg
        limits = (cfg.limit_request_line, cfg.limit_request_fields, cfg.limit_request_field_size)
        if all(limits):
            self.header_limit = limits[0] + limits[1] * (limits[2] + 2) + len(HEADERS_END)
        else:
            self.header_limit = UNLIMITED_HEADERS

    # --- headers before a thread --------------------------------------------------------------
    def accept(self, listener):
        if self.cfg.is_ssl:
            # TLS is the reverse proxy's job; a TLS socket's bytes cannot be gathered raw.
            return super().accept(listener)
        try:
            client, address = listener.accept()
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        self._gather(TConn(self.cfg, client, address, listener.getsockname()))

    def on_client_socket_readable(self, conn, client):
        if self.cfg.is_ssl:
            return super().on_client_socket_readable(conn, client)
        # A kept-alive connection's next request is gathered the same way as a new one's.
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._gather(conn)

    def _gather(self, conn: TConn) -> None:
        conn.sock.setblocking(False)
        conn.header_bytes = bytearray()
        conn.timeout = time.monotonic() + settings.REQUEST_HEADER_TIMEOUT
        if not self.alive:
            conn.timeout = min(conn.timeout, time.monotonic() + 2)
        self.gathering.append(conn)
        self.poller.register(conn.sock, 1, partial(self._read_headers, conn))  # EVENT_READ

    def _read_headers(self, conn: TConn, client) -> None:
        try:
            data = conn.sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._stop_gathering(conn)
            self._close(conn)
            return
        conn.header_bytes += data
        if HEADERS_END not in conn.header_bytes and len(conn.header_bytes) <= self.header_limit:
            return
        self._stop_gathering(conn)
        conn.init()
        # The parser reads what was gathered first, then the socket (a body, a next request).
        conn.parser.unreader.unread(bytes(conn.header_bytes))
        del conn.header_bytes
        conn.data_ready = True
        self.enqueue_req(conn)

    def _stop_gathering(self, conn: TConn) -> None:
        self.gathering.remove(conn)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)

    def _close(self, conn: TConn) -> None:
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self):
        super().murder_pending()
        now = time.monotonic()
        while self.gathering and self.gathering[0].timeout <= now:
            conn = self.gathering[0]
            self._stop_gathering(conn)
            self._close(conn)
        self._abort_reads_when_due(now)

    def _cap_keepalive(self, deadline):
        super()._cap_keepalive(deadline)
        for conn in self.gathering:
            conn.timeout = min(conn.timeout, deadline)

    # --- uploads end cleanly on stop ----------------------------------------------------------
    def handle(self, conn):
        with self.serving_lock:
            self.serving.add(conn)
        try:
            return super().handle(conn)
        finally:
            with self.serving_lock:
                self.serving.discard(conn)

    def handle_exit(self, sig, frame):
        if self.abort_at is None:
            # Leave the request's own cleanup (store deletes, status reset) a few seconds.
            grace = self.cfg.graceful_timeout
            self.abort_at = time.monotonic() + max(grace - min(5.0, grace / 3), 0.0)
        super().handle_exit(sig, frame)

    def _abort_reads_when_due(self, now: float) -> None:
        if self.aborted or self.abort_at is None or now < self.abort_at:
            return
        self.aborted = True
        with self.serving_lock:
            serving = list(self.serving)
        for conn in serving:
            # A blocked read returns end-of-data; the response can still be written.
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RD)
