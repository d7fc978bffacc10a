"""Clients that never finish their headers hold no gunicorn thread: the API keeps answering,
and they are disconnected after REQUEST_HEADER_TIMEOUT."""

from __future__ import annotations

import socket
import time

from tests.nodes.conftest import request

PARTIAL_REQUEST = b"GET /versions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


def open_slow_clients(port: int, count: int) -> list[socket.socket]:
    clients = []
    for _ in range(count):
        client = socket.create_connection(("127.0.0.1", port))
        client.sendall(PARTIAL_REQUEST)
        clients.append(client)
    return clients


def test_twenty_unfinished_requests_do_not_stop_the_api(start_node):
    # 2 workers x 2 threads: 4 such clients were enough to stop it before.
    node = start_node("api", REQUEST_HEADER_TIMEOUT="60")
    slow = open_slow_clients(node.port, 20)
    try:
        time.sleep(1)  # each has reached a worker
        started = time.monotonic()
        answers = [request(f"{node.url}/versions", timeout=5)[0] for _ in range(10)]
        took = time.monotonic() - started
        for client in slow:  # a byte more keeps none of them from being gathered
            client.sendall(b"x")
        more = [request(f"{node.url}/versions", timeout=5)[0] for _ in range(5)]
    finally:
        for client in slow:
            client.close()

    assert answers == [200] * 10 and more == [200] * 5
    assert took < 5


def test_a_client_that_does_not_finish_its_headers_in_time_is_disconnected(start_node):
    node = start_node("api", REQUEST_HEADER_TIMEOUT="2")
    (slow,) = open_slow_clients(node.port, 1)
    slow.settimeout(10)
    try:
        started = time.monotonic()
        closed = slow.recv(1024)
        took = time.monotonic() - started
    finally:
        slow.close()

    assert closed == b""
    assert 1 <= took <= 5


def test_a_request_sent_in_pieces_within_the_timeout_is_answered(start_node):
    node = start_node("api", REQUEST_HEADER_TIMEOUT="10")
    with socket.create_connection(("127.0.0.1", node.port), timeout=10) as client:
        for piece in (b"GET /vers", b"ions HTTP/1.1\r\nHo", b"st: 127.0.0.1\r\n", b"\r\n"):
            client.sendall(piece)
            time.sleep(0.3)
        answer = client.recv(65536)

    assert answer.startswith(b"HTTP/1.1 200 OK")
