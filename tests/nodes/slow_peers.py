"""Loopback peers that never finish: a web-download source and an upload client that trickle
bytes until told to stop, for tests that stop or kill a node in the middle of a transfer."""

from __future__ import annotations

import contextlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHUNK = b"\x00" * 65536
ANNOUNCED = 1024**3  # far more than a test ever sends


class TrickleSource:
    """An HTTP server whose every response announces 1 GiB and sends 64 KiB per ``interval``."""

    def __init__(self, interval: float = 0.1):
        self.stopped = threading.Event()
        source = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Length", str(ANNOUNCED))
                self.end_headers()
                with contextlib.suppress(OSError):
                    while not source.stopped.wait(interval):
                        self.wfile.write(CHUNK)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/image.raw") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.stopped.set()
        self.server.shutdown()
        self.server.server_close()


class TrickleUpload:
    """``PUT`` of a body announced as 1 GiB, sent 64 KiB per ``interval`` from a thread."""

    def __init__(self, port: int, path: str, token: str, interval: float = 0.1):
        self.stopped = threading.Event()
        self.sock = socket.create_connection(("127.0.0.1", port))
        head = (
            f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Auth-Token: {token}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {ANNOUNCED}\r\n\r\n"
        )
        self.sock.sendall(head.encode())
        self.thread = threading.Thread(target=self._send, args=(interval,), daemon=True)
        self.thread.start()

    def _send(self, interval: float) -> None:
        with contextlib.suppress(OSError):
            while not self.stopped.wait(interval):
                self.sock.sendall(CHUNK)

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)
        self.sock.close()
