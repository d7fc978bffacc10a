"""``GET /healthcheck`` answers 503 while the node cannot reach its database, and 200 again once
it can: PostgreSQL reached through a loopback forwarder that the test cuts and restores."""

from __future__ import annotations

import contextlib
import socket
import threading
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.nodes.conftest import request, wait_for


class Forwarder:
    """TCP from a loopback port to ``target``, until ``cut()``; ``restore()`` listens again."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.port = 0
        self.connections: list[socket.socket] = []
        self.listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        self.port = listener.getsockname()[1]
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = listener.accept()
                server = socket.create_connection(self.target)
                self.connections += [client, server]
                for source, sink in ((client, server), (server, client)):
                    threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def cut(self) -> None:
        # A bare close() leaves the socket listening under the thread blocked in accept().
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        for connection in self.connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()
        self.connections = []


def test_healthcheck_is_503_while_the_database_is_unreachable(start_node, cluster):
    url = urlsplit(cluster.env["DATABASE_URL"])
    if not url.scheme.startswith("postgres"):
        pytest.skip("runs on PostgreSQL, the database a node reaches over the network")
    forwarder = Forwarder((url.hostname, url.port or 5432))
    through = urlunsplit(url._replace(netloc=f"{url.username}@127.0.0.1:{forwarder.port}"))
    node = start_node("api", DATABASE_URL=through)
    healthy = request(f"{node.url}/healthcheck")

    forwarder.cut()
    down = [request(f"{node.url}/healthcheck")[::2] for _ in range(2)]
    forwarder.restore()
    wait_for(lambda: request(f"{node.url}/healthcheck")[0] == 200, 10, "the database again")

    assert (healthy[0], healthy[2]) == (200, b"OK")
    assert down == [(503, b"DATABASE UNREACHABLE")] * 2
    forwarder.cut()
