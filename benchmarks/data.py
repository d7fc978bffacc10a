"""Image data benchmark: 1 GiB uploads and downloads against a real `make run` server.

On a throw-away server (`common.server.throwaway_server`), as the demo user, one request each:
`PUT /v2/images/{id}/file` with Content-Length and chunked, then `GET /v2/images/{id}/file` of
each image (the second after its pages left the page cache), compared with what was sent, while
every gunicorn worker's memory is sampled; and the machine's limits (`common.machine`).
benchmarks/README.md describes the phases, the bounds and the columns.

Run: ``.venv/bin/python benchmarks/data.py`` (or ``make bench``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from common.client import (
    TRANSFER_TIME_LIMIT,
    BenchError,
    Client,
    check_deadline,
)
from common.machine import MachineLimits
from common.measure import SAMPLE_INTERVAL, Transfer, WorkerMemory, measure
from common.payload import IMAGE_SIZE, PIECE, Payload, check_stored
from common.procfs import workers_peak_rss_kib
from common.report import RATE_COLUMNS, Table, at_least, print_outcomes, print_setup
from common.server import Server, run_benchmark, throwaway_server

# Pages freed in this VM go back to the hypervisor within a few seconds; fresh ones cost ~2 s of
# kernel time per GiB to touch. Waiting this long after evicting an image makes its download
# fill page cache the way a download of an image uploaded long ago does.
EVICT_SETTLE_SECONDS = 6.0
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


def download(client: Client, image_id: str, payload: Payload, phase: Transfer) -> None:
    """GET the image into one buffer, every read compared with what was uploaded."""
    deadline = time.monotonic() + TRANSFER_TIME_LIMIT
    connection = client.connect()
    # The image is the block repeated: any read of at most one block is a slice of two.
    doubled = payload.block * 2
    buffer = memoryview(bytearray(PIECE))
    mismatches = 0
    try:
        headers = {"X-Auth-Token": client.token}
        connection.request("GET", f"/v2/images/{image_id}/file", headers=headers)
        response = connection.getresponse()
        if response.status != 200:
            raise BenchError(f"GET answered {response.status}: {response.read(300)!r}")
        phase.checks.append(f"Content-Length {response.getheader('Content-Length')}")
        content_md5 = response.getheader("Content-MD5")
        while read := response.readinto(buffer):
            if not doubled.startswith(buffer[:read], phase.bytes_moved % PIECE):
                mismatches += 1
            phase.add_bytes(read)
            check_deadline(deadline)
    finally:
        connection.close()
    if phase.bytes_moved != IMAGE_SIZE:
        raise BenchError(f"got {phase.bytes_moved} bytes, expected {IMAGE_SIZE}")
    if mismatches:
        raise BenchError(f"{mismatches} reads differ from the uploaded bytes")
    if content_md5 != payload.digests[0]:
        raise BenchError(f"Content-MD5 {content_md5}, expected {payload.digests[0]}")
    phase.checks += ["Content-MD5 matches", "bytes match the upload"]


def verify_image(client: Client, image_id: str, payload: Payload, phase: Transfer) -> None:
    """After an upload: the server's record of the image carries what was sent."""
    if phase.error:
        return
    status, image = client.request_json("GET", f"/v2/images/{image_id}")
    if status != 200:
        phase.error = f"GET image answered {status}"
    elif not check_stored(image, IMAGE_SIZE, payload.digests, phase.checks):
        phase.error = "the stored image does not match what was sent"


def evict_from_page_cache(path: Path) -> bool:
    """Drop the stored image's pages from the page cache, then let the freed memory settle."""
    try:
        with path.open("rb") as stored:
            # Clean pages (the server fsynced), so the kernel drops them at once.
            os.posix_fadvise(stored.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    except FileNotFoundError:
        return False
    time.sleep(EVICT_SETTLE_SECONDS)
    return True


def run_phase(name: str, master: int, send: Callable[[Transfer], None]) -> Transfer:
    return measure(Transfer(name), master, send, sample_memory=True)


def uploads(
    client: Client, master: int, payload: Payload, source: Path, images: list[str]
) -> list[Transfer]:
    """Each way of sending the image, into an image of its own, checked once stored."""
    phases = []
    for how, send in payload.senders(client, source).items():
        images.append(client.create_image(f"bench-data-{len(images)}"))
        phase = run_phase(f"upload, {how}", master, partial(send, f"/v2/images/{images[-1]}/file"))
        verify_image(client, images[-1], payload, phase)
        phases.append(phase)
    return phases


def downloads(
    server: Server, client: Client, payload: Payload, images: list[str]
) -> list[Transfer]:
    """The first image right after the uploads, the second once its pages left the page cache."""
    cached = run_phase("download", server.master, partial(download, client, images[0], payload))
    evicted = evict_from_page_cache(server.data_dir / "images" / images[1])
    uncached = run_phase(
        "download, uncached", server.master, partial(download, client, images[1], payload)
    )
    if not evicted:
        uncached.checks.append("NOT evicted (no file in DATA_DIR/images)")
    return [cached, uncached]


def print_rates(phases: list[Transfer]) -> None:
    cpu = (("server CPU s", 14, ".2f"), ("client CPU s", 14, ".2f"))
    table = Table("phase", 24, (*RATE_COLUMNS, *cpu, ("Glance MB/s", 13, ".0f")), "target MB/s")
    table.print_header()
    for phase in phases:
        table.print_row(
            phase.name,
            *(phase.mb_per_s, phase.mib_per_s, phase.seconds, phase.server_cpu, phase.client_cpu),
            GLANCE_MBPS.get(phase.name, "-"),
            last=at_least(phase.mb_per_s, TARGET_MBPS[phase.name]),
        )
    print_outcomes(phases)


def memory_verdict(serving: WorkerMemory) -> str:
    flat = serving.growth / 1024 < FLAT_GROWTH_MIB
    low = serving.peak / 1024 <= TARGET_RSS_MIB
    verdict = "PASS" if flat and low else "BELOW"
    return f"{'flat' if flat else 'GROWS'}, {'<=' if low else '>'} {TARGET_RSS_MIB:.0f}: {verdict}"


def print_memory(phases: list[Transfer], master: int) -> None:
    print()
    titles = (("before", 7), ("1st quarter", 12), ("rest", 6), ("peak", 6), ("Glance", 10))
    columns = tuple((title, width, ".0f") for title, width in titles)
    table = Table("serving worker RSS, MiB", 24, columns, f"target: flat, <= {TARGET_RSS_MIB:.0f}")
    table.print_header()
    for phase in phases:
        serving = phase.memory.serving() if phase.memory else None
        if serving is None:
            table.print_row(phase.name, last="no worker found")
            continue
        kib = (serving.rss_before, serving.early, serving.late, serving.peak)
        glance = GLANCE_RSS if phase.name in GLANCE_MBPS else "-"
        table.print_row(phase.name, *(k / 1024 for k in kib), glance, last=memory_verdict(serving))
    print(
        f"  The worker that served the phase (most CPU time), VmRSS sampled every "
        f"{SAMPLE_INTERVAL * 1000:.0f} ms: before, largest in the first quarter and in the rest\n"
        f"  of the phase, peak (VmHWM if it rose). 'flat' = rest < {FLAT_GROWTH_MIB:.0f} MiB above "
        f"the first quarter.\n  VmHWM of each worker at the end: "
        + ", ".join(f"{kib / 1024:.0f}" for kib in workers_peak_rss_kib(master))
        + " MiB"
    )


def warm_up(server: Server, client: Client, block: bytes) -> int:
    """A request into every worker, then one small upload through the data path; the requests."""
    requests = client.warm_every_worker(server.master)
    image_id = client.create_image("bench-data-warmup")
    try:
        client.put_chunked(f"/v2/images/{image_id}/file", block, 1)
    finally:
        client.delete_image(image_id)
    return requests


def benchmark(server: Server, block: bytes, limits: MachineLimits) -> list[Transfer]:
    client = Client(server.port)
    payload = limits.hash_one_pass(block)
    limits.hash_two_threads(block)
    images: list[str] = []
    with payload.source_file(server.data_dir) as source:
        try:
            warmup_requests = warm_up(server, client, block)
            print(f"warm-up: {warmup_requests} list requests, one 1 MiB upload\n")
            phases = uploads(client, server.master, payload, source, images)
            phases += downloads(server, client, payload, images)
            # After the transfers and before anything is deleted: every write in this run, dd's
            # and the server's, then goes to page cache never used before (see the README).
            limits.write_with_dd(server.data_dir)
        finally:
            for image_id in images:
                client.delete_image(image_id)
    return phases


def main() -> int:
    block = os.urandom(PIECE)  # the image is this block 1024 times
    limits = MachineLimits()
    with throwaway_server("imageservice-bench-data-") as server:
        print_setup(server, f"DATA_DIR {server.data_dir}", f"1 GiB = {IMAGE_SIZE} bytes")
        phases = benchmark(server, block, limits)
        leftovers = server.leftovers("images")
        print_rates(phases)
        print_memory(phases, server.master)
        limits.print_table()
        if leftovers:
            print(f"left in the store after deleting: {leftovers}")
    return 1 if any(phase.error for phase in phases) or leftovers else 0


if __name__ == "__main__":
    run_benchmark(main)
