"""Image data benchmark: 1 GiB uploads and downloads against a real `make run` server.

Self-contained, like `api.py`: a temporary DATA_DIR, `migrate` + `seed_demo` there,
`manage.py serve` (gunicorn plus the django-q2 worker, exactly as `make run`) on a free loopback
port (`common.throwaway_server`). From this process, as the demo user, one request each:

- `PUT /v2/images/{id}/file` of 1 GiB with Content-Length, sent from a file with sendfile(2);
- the same 1 GiB with hand-written chunked framing, 1 MiB a chunk, from one in-memory block;
- `GET /v2/images/{id}/file` of the first image right after its upload, and of the second once
  its pages are evicted from the page cache, each into a 1 MiB buffer compared with what was sent;

while a thread samples VmRSS / VmHWM of every gunicorn worker. In the same run it measures the
machine's limits: MD5 + SHA-512 of 1 GiB in Python (one thread, and one thread each), and `dd`
of 1 GiB into the DATA_DIR filesystem (with fdatasync, and with O_DIRECT). Every transfer is
bounded in time; the images and files are deleted, the server stopped and the directory removed
on success, failure and Ctrl-C.

Run: ``.venv/bin/python benchmarks/data.py`` (or ``make bench``).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from common import (
    BENCH_TOKEN,
    HOST,
    REQUEST_TIMEOUT,
    TRANSFER_TIME_LIMIT,
    BenchError,
    Server,
    check_deadline,
    child_pids,
    cpu_seconds,
    put_chunked,
    put_with_length,
    raise_interrupt,
    status_kib,
    throwaway_server,
)

MiB = 1024 * 1024
PIECE = MiB  # chunk size of the chunked upload, of the download buffer and of the source block
PIECES = 1024
IMAGE_SIZE = PIECE * PIECES  # 1 GiB
DD_TIMEOUT = 60.0
SAMPLE_INTERVAL = 0.02
# Pages freed in this VM go back to the hypervisor within a few seconds; fresh ones cost ~2 s of
# kernel time per GiB to touch. Waiting this long after evicting an image makes its download
# fill page cache the way a download of an image uploaded long ago does.
EVICT_SETTLE_SECONDS = 6.0
WARMUP_REQUESTS_MAX = 400
WARMUP_CPU_SECONDS = 0.03  # a worker's first request costs more than this
EARLY_FRACTION = 0.25
FLAT_GROWTH_MIB = 8.0  # "flat": after the first quarter, RSS grows by less than this

# Glance on the same kind of machine (from the issue) and the targets, in MB/s (10^6 B/s).
GLANCE_MBPS = {"upload, Content-Length": 148.0, "upload, chunked 1 MiB": 136.0}
GLANCE_RSS = "145 flat"
TARGET_MBPS = {
    "upload, Content-Length": 450.0,
    "upload, chunked 1 MiB": 450.0,
    "download": 1000.0,
    "download, uncached": 1000.0,
}
TARGET_RSS_MIB = 100.0


# --- worker memory ----------------------------------------------------------------------------


@dataclass
class WorkerMemory:
    """One worker's memory (KiB) around a phase: VmRSS sampled during it, VmHWM before/after."""

    rss_before: int
    hwm_before: int
    cpu_before: float
    samples: list[tuple[float, int]] = field(default_factory=list)  # (seconds in, VmRSS)
    hwm_after: int = 0
    cpu_after: float = 0.0

    def _largest(self, early: bool) -> int:
        if not self.samples:
            return self.rss_before
        cut = self.samples[-1][0] * EARLY_FRACTION
        values = [rss for at, rss in self.samples if (at <= cut) == early]
        return max(values, default=self.rss_before)

    @property
    def early(self) -> int:
        """Largest RSS in the first quarter of the phase: buffers and thread stacks set up."""
        return self._largest(early=True)

    @property
    def late(self) -> int:
        """Largest RSS in the remaining three quarters: grows only if memory follows the size."""
        return self._largest(early=False)

    @property
    def growth(self) -> int:
        return self.late - self.early

    @property
    def peak(self) -> int:
        """Largest RSS during the phase: the samples, and VmHWM if it rose (a spike in between)."""
        sampled = max(self.early, self.late)
        return max(sampled, self.hwm_after) if self.hwm_after > self.hwm_before else sampled


class MemorySampler:
    """Samples VmRSS of every gunicorn worker while a phase runs; VmHWM before and after."""

    def __init__(self, master: int):
        self.workers: dict[int, WorkerMemory] = {}
        for pid in child_pids(master):
            values = status_kib(pid, "VmRSS", "VmHWM")
            if values:
                self.workers[pid] = WorkerMemory(values["VmRSS"], values["VmHWM"], cpu_seconds(pid))
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        started = time.perf_counter()
        while not self.stop.wait(SAMPLE_INTERVAL):
            for pid, memory in self.workers.items():
                rss = status_kib(pid, "VmRSS").get("VmRSS")
                if rss is not None:
                    memory.samples.append((time.perf_counter() - started, rss))

    def __enter__(self) -> MemorySampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        for pid, memory in self.workers.items():
            memory.hwm_after = status_kib(pid, "VmHWM").get("VmHWM", memory.hwm_before)
            memory.cpu_after = cpu_seconds(pid)

    def serving(self) -> WorkerMemory | None:
        """The worker that did the work: the one whose CPU time grew most."""
        if not self.workers:
            return None
        return max(self.workers.values(), key=lambda memory: memory.cpu_after - memory.cpu_before)

    @property
    def server_cpu(self) -> float:
        return sum(memory.cpu_after - memory.cpu_before for memory in self.workers.values())


# --- phases -----------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    seconds: float = 0.0
    bytes: int = 0
    client_cpu: float = 0.0
    memory: MemorySampler | None = None
    error: str | None = None
    checks: list[str] = field(default_factory=list)

    def add_bytes(self, count: int) -> None:
        self.bytes += count

    @property
    def mb_per_s(self) -> float:
        return self.bytes / self.seconds / 1e6 if self.seconds and not self.error else 0.0

    @property
    def mib_per_s(self) -> float:
        return self.mb_per_s * 1e6 / MiB


def client_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_phase(name: str, master: int, transfer: Callable[[Phase], None]) -> Phase:
    phase = Phase(name)
    cpu_before = client_cpu()
    with MemorySampler(master) as memory:
        started = time.perf_counter()
        try:
            transfer(phase)
        except (OSError, http.client.HTTPException, BenchError) as error:
            phase.error = f"{type(error).__name__}: {error}"
        phase.seconds = time.perf_counter() - started
    phase.client_cpu = client_cpu() - cpu_before
    phase.memory = memory
    return phase


# --- HTTP -------------------------------------------------------------------------------------


def connect(port: int) -> http.client.HTTPConnection:
    return http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT)


def json_request(port: int, method: str, path: str, document: dict | None = None):
    connection = connect(port)
    headers = {"X-Auth-Token": BENCH_TOKEN}
    body = None
    if document is not None:
        headers["Content-Type"] = "application/json"
        body = json.dumps(document).encode()
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
    finally:
        connection.close()
    return response.status, (json.loads(payload) if payload else None)


def create_image(port: int, name: str) -> str:
    document = {"name": name, "disk_format": "raw", "container_format": "bare"}
    status, image = json_request(port, "POST", "/v2/images", document)
    if status != 201:
        raise BenchError(f"POST /v2/images answered {status}: {image}")
    return image["id"]


def delete_image(port: int, image_id: str) -> None:
    json_request(port, "DELETE", f"/v2/images/{image_id}")


def upload_with_length(port: int, image_id: str, source: Path, phase: Phase) -> None:
    put_with_length(port, f"/v2/images/{image_id}/file", source, IMAGE_SIZE, phase.add_bytes)


def upload_chunked(port: int, image_id: str, block: bytes, phase: Phase) -> None:
    put_chunked(port, f"/v2/images/{image_id}/file", block, PIECES, phase.add_bytes)


def download(port: int, image_id: str, block: bytes, expected_md5: str, phase: Phase) -> None:
    deadline = time.monotonic() + TRANSFER_TIME_LIMIT
    connection = connect(port)
    # The image is `block` repeated: any read of at most len(block) bytes is a slice of two.
    doubled = block * 2
    buffer = memoryview(bytearray(PIECE))
    mismatches = 0
    try:
        connection.request(
            "GET", f"/v2/images/{image_id}/file", headers={"X-Auth-Token": BENCH_TOKEN}
        )
        response = connection.getresponse()
        if response.status != 200:
            raise BenchError(f"GET answered {response.status}: {response.read(300)!r}")
        phase.checks.append(f"Content-Length {response.getheader('Content-Length')}")
        content_md5 = response.getheader("Content-MD5")
        while read := response.readinto(buffer):
            if not doubled.startswith(buffer[:read], phase.bytes % len(block)):
                mismatches += 1
            phase.bytes += read
            check_deadline(deadline)
    finally:
        connection.close()
    if phase.bytes != IMAGE_SIZE:
        raise BenchError(f"got {phase.bytes} bytes, expected {IMAGE_SIZE}")
    if mismatches:
        raise BenchError(f"{mismatches} reads differ from the uploaded bytes")
    if content_md5 != expected_md5:
        raise BenchError(f"Content-MD5 {content_md5}, expected {expected_md5}")
    phase.checks += ["Content-MD5 matches", "bytes match the upload"]


def verify_image(port: int, image_id: str, digests: tuple[str, str], phase: Phase) -> None:
    if phase.error:
        return
    status, image = json_request(port, "GET", f"/v2/images/{image_id}")
    if status != 200:
        phase.error = f"GET image answered {status}"
        return
    md5, sha512 = digests
    checks = {
        f"status {image.get('status')}": image.get("status") == "active",
        f"size {image.get('size')}": image.get("size") == IMAGE_SIZE,
        "checksum (MD5)": image.get("checksum") == md5,
        f"os_hash_value ({image.get('os_hash_algo')})": image.get("os_hash_value") == sha512,
    }
    for label, ok in checks.items():
        phase.checks.append(label + ("" if ok else " WRONG"))
    if not all(checks.values()):
        phase.error = "the stored image does not match what was sent"


def evict_from_page_cache(path: Path) -> bool:
    """Drop the stored image's pages from the page cache, then let the freed memory settle."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # clean pages: the server fsynced
    finally:
        os.close(fd)
    time.sleep(EVICT_SETTLE_SECONDS)
    return True


# --- machine limits ---------------------------------------------------------------------------


@dataclass
class Limits:
    dd_seconds: float = float("nan")
    dd_direct_seconds: float = float("nan")
    one_pass_seconds: float = float("nan")
    two_threads_seconds: float = float("nan")
    md5: str = ""
    sha512: str = ""


def hash_one_pass(block: bytes, limits: Limits) -> None:
    md5, sha512 = hashlib.md5(usedforsecurity=False), hashlib.sha512()
    started = time.perf_counter()
    for _ in range(PIECES):
        md5.update(block)
        sha512.update(block)
    limits.one_pass_seconds = time.perf_counter() - started
    limits.md5, limits.sha512 = md5.hexdigest(), sha512.hexdigest()


def hash_two_threads(block: bytes, limits: Limits) -> None:
    def run(name: str) -> None:
        digest = hashlib.new(name)
        for _ in range(PIECES):
            digest.update(block)

    threads = [threading.Thread(target=run, args=(name,)) for name in ("md5", "sha512")]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    limits.two_threads_seconds = time.perf_counter() - started


def dd_to_disk(data_dir: Path, *flags: str) -> float:
    """Seconds dd reports for writing 1 GiB of zeros into the DATA_DIR filesystem."""
    target = data_dir / "dd.tmp"
    command = ["dd", "if=/dev/zero", f"of={target}", "bs=1M", f"count={PIECES}", *flags]
    try:
        started = time.perf_counter()
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=DD_TIMEOUT, check=True
        )
        elapsed = time.perf_counter() - started
    finally:
        target.unlink(missing_ok=True)
    reported = re.search(r"copied, ([0-9.]+) s", result.stderr)
    return float(reported.group(1)) if reported else elapsed


def write_source(path: Path, block: bytes) -> None:
    with path.open("wb") as handle:
        for _ in range(PIECES):
            handle.write(block)
        handle.flush()
        os.fdatasync(handle.fileno())  # not left to write back during the measured uploads


# --- report -----------------------------------------------------------------------------------


def mib(kib: int) -> str:
    return f"{kib / 1024:.0f}"


def rate_verdict(phase: Phase) -> str:
    target = TARGET_MBPS[phase.name]
    return f">= {target:.0f} {'PASS' if phase.mb_per_s >= target else 'BELOW'}"


def print_rates(phases: list[Phase]) -> None:
    header = (
        f"{'phase':<24}{'MB/s':>7}{'MiB/s':>7}{'seconds':>9}{'server CPU s':>14}"
        f"{'client CPU s':>14}{'Glance MB/s':>13}  target MB/s"
    )
    print(header)
    print("-" * len(header))
    for phase in phases:
        glance = GLANCE_MBPS.get(phase.name)
        server = phase.memory.server_cpu if phase.memory else float("nan")
        print(
            f"{phase.name:<24}{phase.mb_per_s:>7.0f}{phase.mib_per_s:>7.0f}{phase.seconds:>9.2f}"
            f"{server:>14.2f}{phase.client_cpu:>14.2f}"
            f"{(f'{glance:.0f}' if glance else '-'):>13}  {rate_verdict(phase)}"
        )
    for phase in phases:
        outcome = f"FAILED ({phase.error})" if phase.error else "ok"
        print(f"  {phase.name}: {outcome}; {', '.join(phase.checks) or 'no checks'}")


def memory_verdict(serving: WorkerMemory) -> str:
    flat = serving.growth / 1024 < FLAT_GROWTH_MIB
    low = serving.peak / 1024 <= TARGET_RSS_MIB
    return f"{'flat' if flat else 'GROWS'}, {'<=' if low else '>'} {TARGET_RSS_MIB:.0f}: " + (
        "PASS" if flat and low else "BELOW"
    )


def print_memory(phases: list[Phase]) -> None:
    print()
    header = (
        f"{'serving worker RSS, MiB':<24}{'before':>7}{'1st quarter':>12}{'rest':>6}{'peak':>6}"
        f"{'Glance':>10}  target: flat, <= {TARGET_RSS_MIB:.0f}"
    )
    print(header)
    print("-" * len(header))
    highest: dict[int, int] = {}
    for phase in phases:
        serving = phase.memory.serving() if phase.memory else None
        if serving is None:
            print(f"{phase.name:<24}  no worker found")
            continue
        for pid, memory in phase.memory.workers.items():
            highest[pid] = max(highest.get(pid, 0), memory.hwm_after)
        glance = GLANCE_RSS if phase.name in GLANCE_MBPS else "-"
        print(
            f"{phase.name:<24}{mib(serving.rss_before):>7}{mib(serving.early):>12}"
            f"{mib(serving.late):>6}{mib(serving.peak):>6}{glance:>10}  {memory_verdict(serving)}"
        )
    print(
        f"  The worker that served the phase (most CPU time), VmRSS sampled every "
        f"{SAMPLE_INTERVAL * 1000:.0f} ms: before, largest in the first quarter and in the rest\n"
        f"  of the phase, peak (VmHWM if it rose). 'flat' = rest < {FLAT_GROWTH_MIB:.0f} MiB above "
        f"the first quarter.\n  VmHWM of each worker at the end: "
        + ", ".join(mib(kib) for kib in sorted(highest.values(), reverse=True))
        + " MiB"
    )


def print_limits(limits: Limits) -> None:
    print()
    rows = [
        ("dd bs=1M count=1024 conv=fdatasync", limits.dd_seconds),
        ("  the same with oflag=direct", limits.dd_direct_seconds),
        ("MD5 + SHA-512, one pass, one thread", limits.one_pass_seconds),
        ("MD5 | SHA-512, two threads at once", limits.two_threads_seconds),
    ]
    header = f"{'machine limit, 1 GiB':<40}{'MB/s':>7}{'MiB/s':>7}{'seconds':>9}"
    print(header)
    print("-" * len(header))
    for label, seconds in rows:
        print(
            f"{label:<40}{IMAGE_SIZE / seconds / 1e6:>7.0f}{IMAGE_SIZE / seconds / MiB:>7.0f}"
            f"{seconds:>9.2f}"
        )


# --- main -------------------------------------------------------------------------------------


def warm_up(server: Server, block: bytes) -> int:
    """Get every worker to serve requests, so none imports its code during a measured phase.

    New connections land on whichever worker accepts first; this goes on until every worker's
    CPU time shows it served one (or the bound). Then one small upload runs the data path once.
    Returns how many list requests it took.
    """
    workers = child_pids(server.master)
    started = {pid: cpu_seconds(pid) for pid in workers}
    requests = 0
    while requests < WARMUP_REQUESTS_MAX and not all(
        cpu_seconds(pid) - started[pid] >= WARMUP_CPU_SECONDS for pid in workers
    ):
        connection = connect(server.port)
        headers = {"X-Auth-Token": BENCH_TOKEN, "Connection": "close"}
        connection.request("GET", "/v2/images?limit=1", headers=headers)
        connection.getresponse().read()
        connection.close()
        requests += 1
    image_id = create_image(server.port, "bench-data-warmup")
    try:
        put_chunked(server.port, f"/v2/images/{image_id}/file", block, 1)
    finally:
        delete_image(server.port, image_id)
    return requests


def benchmark(server: Server, block: bytes) -> tuple[list[Phase], Limits]:
    port, master = server.port, server.master
    limits = Limits()
    hash_one_pass(block, limits)
    hash_two_threads(block, limits)
    digests = (limits.md5, limits.sha512)
    source = server.data_dir / "source.bin"
    images: list[str] = []
    try:
        write_source(source, block)
        warmup_requests = warm_up(server, block)
        print(f"warm-up: {warmup_requests} list requests, one 1 MiB upload\n")

        images.append(create_image(port, "bench-data-length"))
        with_length = run_phase(
            "upload, Content-Length",
            master,
            lambda phase: upload_with_length(port, images[0], source, phase),
        )
        verify_image(port, images[0], digests, with_length)

        images.append(create_image(port, "bench-data-chunked"))
        chunked = run_phase(
            "upload, chunked 1 MiB",
            master,
            lambda phase: upload_chunked(port, images[1], block, phase),
        )
        verify_image(port, images[1], digests, chunked)

        cached = run_phase(
            "download",
            master,
            lambda phase: download(port, images[0], block, limits.md5, phase),
        )

        evicted = evict_from_page_cache(server.data_dir / "images" / images[1])
        uncached = run_phase(
            "download, uncached",
            master,
            lambda phase: download(port, images[1], block, limits.md5, phase),
        )
        if not evicted:
            uncached.checks.append("NOT evicted (no file in DATA_DIR/images)")
        # After the transfers and before anything is deleted: every write in this run, dd's
        # and the server's, then goes to page cache never used before (see the README).
        limits.dd_seconds = dd_to_disk(server.data_dir, "conv=fdatasync")
        limits.dd_direct_seconds = dd_to_disk(server.data_dir, "oflag=direct", "conv=fdatasync")
    finally:
        for image_id in images:
            delete_image(port, image_id)
        source.unlink(missing_ok=True)
    return [with_length, chunked, cached, uncached], limits


def describe_setup(server: Server) -> None:
    workers = len(child_pids(server.master))
    print(
        f"manage.py serve on {HOST}:{server.port}: {workers} gunicorn workers + job worker; "
        f"{os.cpu_count()} CPUs; DATA_DIR {server.data_dir}; 1 GiB = {IMAGE_SIZE} bytes"
    )


def main() -> int:
    signal.signal(signal.SIGTERM, raise_interrupt)
    block = os.urandom(PIECE)  # the image is this block 1024 times
    with throwaway_server("imageservice-bench-data-") as server:
        describe_setup(server)
        phases, limits = benchmark(server, block)
        leftovers = list((server.data_dir / "images").glob("*"))
        print_rates(phases)
        print_memory(phases)
        print_limits(limits)
        if leftovers:
            print(f"left in the store after deleting: {[path.name for path in leftovers]}")
    return 1 if any(phase.error for phase in phases) or leftovers else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; server stopped", file=sys.stderr)
        sys.exit(130)
