"""Metadata API benchmark: image creates and image lists against a real `make run` server.

On a throw-away server (`common.server.throwaway_server`), as the demo user, with plain
``http.client`` connections from this process: 200 sequential creates, then lists of 25 images
for 10 s from one client and from eight. Every loop is bounded in count and in time.
benchmarks/README.md describes the phases and the columns.

Run: ``make bench`` or ``.venv/bin/python benchmarks/api.py``.
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from common.procfs import gunicorn_cpu, peak_rss_kib, workers_peak_rss_kib
from common.report import Table, at_least, print_setup
from common.server import BENCH_TOKEN, HOST, run_benchmark, throwaway_server

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
    lock: threading.Lock = field(default_factory=threading.Lock)  # list clients share a phase
    token: str = BENCH_TOKEN  # the caller's X-Auth-Token (benchmarks/keystone.py: Keystone's)

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

    def record(
        self,
        connection: http.client.HTTPConnection,
        method: str,
        path: str,
        body: bytes | None = None,
    ) -> None:
        """Send one request, timed from sending to the last byte read, and count it."""
        headers = {"X-Auth-Token": self.token, "Connection": "keep-alive"}
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
        latency_ms = 1000 * (time.perf_counter() - started)
        with self.lock:
            if ok:
                self.latencies_ms.append(latency_ms)
            else:
                self.errors += 1


def connect(port: int) -> http.client.HTTPConnection:
    return http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT)


def run_creates(port: int, phase: Phase) -> None:
    connection = connect(port)
    deadline = time.monotonic() + CREATE_TIME_LIMIT
    for number in range(CREATE_COUNT):
        if time.monotonic() > deadline:
            break
        document = {
            "name": f"bench-{number:04d}",
            "disk_format": "raw",
            "container_format": "bare",
            "bench_run": "metadata-api",
        }
        phase.record(connection, "POST", "/v2/images", json.dumps(document).encode())
    connection.close()


def run_lists(port: int, phase: Phase, clients: int) -> None:
    deadline = time.monotonic() + LIST_SECONDS

    def client() -> None:
        connection = connect(port)
        for _ in range(MAX_REQUESTS_PER_CLIENT):
            if time.monotonic() >= deadline:
                break
            phase.record(connection, "GET", LIST_PATH)
        connection.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=LIST_SECONDS + REQUEST_TIMEOUT + 5)


def measure_load(phase: Phase, master: int, load: Callable[[Phase], None]) -> Phase:
    """Run ``load``; its time, and the CPU of the gunicorn master and workers meanwhile."""
    cpu_before = gunicorn_cpu(master)
    started = time.perf_counter()
    load(phase)
    phase.seconds = time.perf_counter() - started
    phase.cpu_seconds = gunicorn_cpu(master) - cpu_before
    return phase


def warm_up(port: int) -> bool:
    """Touch every worker once so lazy imports are not billed to the first phase.

    Returns whether the server kept the connection open (gthread workers with keep-alive do).
    """
    connection = connect(port)
    kept_alive = False
    for _ in range(WARMUP_REQUESTS):
        connection.request("GET", LIST_PATH, headers={"X-Auth-Token": BENCH_TOKEN})
        response = connection.getresponse()
        response.read()
        kept_alive = not response.will_close
    connection.close()
    return kept_alive


def benchmark(port: int, master: int, token: str = BENCH_TOKEN) -> list[Phase]:
    many = f"list, {LIST_CLIENTS} clients"
    return [
        measure_load(Phase("create", token=token), master, lambda phase: run_creates(port, phase)),
        measure_load(
            Phase("list, 1 client", token=token), master, lambda phase: run_lists(port, phase, 1)
        ),
        measure_load(
            Phase(many, token=token), master, lambda phase: run_lists(port, phase, LIST_CLIENTS)
        ),
    ]


def print_table(phases: list[Phase]) -> None:
    counts = (("requests", 9, ""), ("errors", 7, ""), ("req/s", 8, ".0f"))
    costs = (("p50 ms", 8, ".1f"), ("p95 ms", 8, ".1f"), ("CPU ms/req", 11, ".1f"))
    table = Table("phase", 18, (*counts, *costs, ("Glance/s", 9, ".0f")), "target")
    table.print_header()
    for phase in phases:
        target = TARGETS.get(phase.name)
        table.print_row(
            phase.name,
            *(phase.requests, phase.errors, phase.rate),
            *(phase.percentile(0.5), phase.percentile(0.95), phase.cpu_ms_per_request),
            GLANCE.get(phase.name, "-"),
            last=at_least(phase.rate, target) if target else "-",
        )


def print_memory(master: int) -> None:
    peaks = workers_peak_rss_kib(master)
    if peaks:
        print(
            f"Peak RSS (VmHWM) of {len(peaks)} gunicorn workers: max {max(peaks) / 1024:.0f} MiB, "
            f"sum {sum(peaks) / 1024:.0f} MiB; master {peak_rss_kib(master) / 1024:.0f} MiB"
        )


def main() -> int:
    with throwaway_server("imageservice-bench-") as server:
        kept_alive = warm_up(server.port)
        database = "DATABASE_URL" if os.environ.get("DATABASE_URL") else "SQLite in a temp DATA_DIR"
        print_setup(server, database, f"server keep-alive: {'yes' if kept_alive else 'no'}")
        phases = benchmark(server.port, server.master)
        print_table(phases)
        print_memory(server.master)
    return 1 if any(phase.errors for phase in phases) else 0


if __name__ == "__main__":
    run_benchmark(main)
