"""Metadata API benchmark: image creates and image lists against a real `make run` server.

Self-contained: a temporary DATA_DIR, `migrate` + `seed_demo` there, `manage.py serve` (gunicorn
plus the django-q2 worker, exactly as `make run`) on a free loopback port, then plain
``http.client`` traffic from this process. Every loop is bounded in count and in time, and the
server is stopped and the directory removed on success, failure and Ctrl-C.

Run: ``make bench`` or ``.venv/bin/python benchmarks/api.py``.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from common import (
    BENCH_TOKEN,
    HOST,
    child_pids,
    gunicorn_cpu,
    peak_rss_kib,
    raise_interrupt,
    throwaway_server,
)

CREATE_COUNT = 200
CREATE_TIME_LIMIT = 120.0
LIST_SECONDS = 10.0
LIST_CLIENTS = 8
LIST_PATH = "/v2/images?limit=25"
MAX_REQUESTS_PER_CLIENT = 100_000
WARMUP_REQUESTS = 20
REQUEST_TIMEOUT = 30.0

# Figures from the issue: Glance on the same kind of machine, and what we aim for.
GLANCE = {"create": 43.0, "list, 1 client": 59.0, f"list, {LIST_CLIENTS} clients": 134.0}
TARGETS = {"create": 200.0, "list, 1 client": 240.0}


@dataclass
class Phase:
    name: str
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0

    @property
    def requests(self) -> int:
        return len(self.latencies_ms) + self.errors

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, fraction: float) -> float:
        if len(self.latencies_ms) < 2:
            return self.latencies_ms[0] if self.latencies_ms else float("nan")
        cuts = statistics.quantiles(self.latencies_ms, n=100, method="inclusive")
        return cuts[round(fraction * 100) - 1]

    @property
    def cpu_ms_per_request(self) -> float:
        return 1000 * self.cpu_seconds / self.requests if self.requests else float("nan")


# --- load -------------------------------------------------------------------------------------


def timed_request(
    connection: http.client.HTTPConnection, method: str, path: str, body: bytes | None
) -> tuple[float, bool]:
    headers = {"X-Auth-Token": BENCH_TOKEN, "Connection": "keep-alive"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    started = time.perf_counter()
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        ok = 200 <= response.status < 300
    except (OSError, http.client.HTTPException):
        connection.close()  # the next request opens a fresh connection
        ok = False
    return 1000 * (time.perf_counter() - started), ok


def record(phase: Phase, lock: threading.Lock, result: tuple[float, bool]) -> None:
    latency_ms, ok = result
    with lock:
        if ok:
            phase.latencies_ms.append(latency_ms)
        else:
            phase.errors += 1


def create_body(number: int) -> bytes:
    document = {
        "name": f"bench-{number:04d}",
        "disk_format": "raw",
        "container_format": "bare",
        "bench_run": "metadata-api",
    }
    return json.dumps(document).encode()


def run_creates(port: int, phase: Phase) -> None:
    connection = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT)
    lock = threading.Lock()
    deadline = time.monotonic() + CREATE_TIME_LIMIT
    for number in range(CREATE_COUNT):
        if time.monotonic() > deadline:
            break
        record(phase, lock, timed_request(connection, "POST", "/v2/images", create_body(number)))
    connection.close()


def run_lists(port: int, phase: Phase, clients: int) -> None:
    lock = threading.Lock()
    deadline = time.monotonic() + LIST_SECONDS

    def client() -> None:
        connection = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT)
        for _ in range(MAX_REQUESTS_PER_CLIENT):
            if time.monotonic() >= deadline:
                break
            record(phase, lock, timed_request(connection, "GET", LIST_PATH, None))
        connection.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=LIST_SECONDS + REQUEST_TIMEOUT + 5)


def measure(phase: Phase, master: int, load: Callable[[], None]) -> Phase:
    cpu_before = gunicorn_cpu(master)
    started = time.perf_counter()
    load()
    phase.seconds = time.perf_counter() - started
    phase.cpu_seconds = gunicorn_cpu(master) - cpu_before
    return phase


def warm_up(port: int) -> bool:
    """Touch every worker once so lazy imports are not billed to the first phase.

    Returns whether the server kept the connection open (gunicorn's sync worker does not).
    """
    connection = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT)
    kept_alive = False
    for _ in range(WARMUP_REQUESTS):
        connection.request("GET", LIST_PATH, headers={"X-Auth-Token": BENCH_TOKEN})
        response = connection.getresponse()
        response.read()
        kept_alive = not response.will_close
    connection.close()
    return kept_alive


# --- report -----------------------------------------------------------------------------------


def verdict(name: str, rate: float) -> str:
    target = TARGETS.get(name)
    if target is None:
        return "-"
    return f">= {target:.0f} {'PASS' if rate >= target else 'BELOW'}"


def print_table(phases: list[Phase]) -> None:
    header = (
        f"{'phase':<18}{'requests':>9}{'errors':>7}{'req/s':>8}{'p50 ms':>8}{'p95 ms':>8}"
        f"{'CPU ms/req':>11}{'Glance/s':>9}  target"
    )
    print(header)
    print("-" * len(header))
    for phase in phases:
        glance = GLANCE.get(phase.name)
        print(
            f"{phase.name:<18}{phase.requests:>9}{phase.errors:>7}{phase.rate:>8.0f}"
            f"{phase.percentile(0.5):>8.1f}{phase.percentile(0.95):>8.1f}"
            f"{phase.cpu_ms_per_request:>11.1f}"
            f"{(f'{glance:.0f}' if glance else '-'):>9}  {verdict(phase.name, phase.rate)}"
        )


def print_memory(master: int) -> None:
    workers = child_pids(master)
    peaks = [peak_rss_kib(pid) for pid in workers]
    if not peaks:
        return
    print(
        f"Peak RSS (VmHWM) of {len(peaks)} gunicorn workers: max {max(peaks) / 1024:.0f} MiB, "
        f"sum {sum(peaks) / 1024:.0f} MiB; master {peak_rss_kib(master) / 1024:.0f} MiB"
    )


# --- main -------------------------------------------------------------------------------------


def benchmark(port: int, master: int) -> list[Phase]:
    create = Phase("create")
    measure(create, master, lambda: run_creates(port, create))
    one = Phase("list, 1 client")
    measure(one, master, lambda: run_lists(port, one, 1))
    many = Phase(f"list, {LIST_CLIENTS} clients")
    measure(many, master, lambda: run_lists(port, many, LIST_CLIENTS))
    return [create, one, many]


def describe_setup(port: int, kept_alive: bool) -> None:
    workers = os.environ.get("WEB_CONCURRENCY", "4")
    database = "DATABASE_URL" if os.environ.get("DATABASE_URL") else "SQLite in a temp DATA_DIR"
    print(
        f"manage.py serve on {HOST}:{port}: {workers} gunicorn workers + job worker, {database}; "
        f"{os.cpu_count()} CPUs; server keep-alive: {'yes' if kept_alive else 'no'}"
    )


def main() -> int:
    signal.signal(signal.SIGTERM, raise_interrupt)
    with throwaway_server("imageservice-bench-") as server:
        describe_setup(server.port, warm_up(server.port))
        phases = benchmark(server.port, server.master)
        print_table(phases)
        print_memory(server.master)
    return 1 if any(phase.errors for phase in phases) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; server stopped", file=sys.stderr)
        sys.exit(130)
