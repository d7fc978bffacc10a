"""Image import benchmark: staging, glance-direct and copy-image against a real `make run` server.

On a throw-away server (`common.server.throwaway_server`; its django-q2 `qcluster` runs the
jobs), as the demo user: three 1 GiB stages, each imported with glance-direct and timed until
`active`. Unless ``--no-copy``: `copy-image` of one 1 GiB image into three more stores of a
second server. benchmarks/README.md describes the phases, the bounds and the columns.

Run: ``.venv/bin/python benchmarks/imports.py`` (or ``make bench``).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import tempfile
from functools import partial
from pathlib import Path

from common.client import BenchError, Client
from common.importing import POLL_INTERVAL, Import, check_active, timed_import
from common.measure import Transfer, measure
from common.payload import IMAGE_SIZE, PIECE, Payload, digests_of
from common.report import RATE_COLUMNS, Table, at_least, at_most, print_outcomes, print_setup
from common.server import Server, run_benchmark, throwaway_server

STAGE_ORDER = ("Content-Length", "chunked 1 MiB", "Content-Length")
COPY_STORES = ("one", "two", "three", "four")  # the image lands in the first, copies go on
OPERATOR_TOKEN = "bench-operator-token-0123456789abcdef"
WARMUP_IMPORTS = 2  # small imports first, so each django-q2 worker process has run the job once

# Glance on the same kind of machine (from the issue) and the targets.
GLANCE_STAGE_MBPS = 144.0
TARGET_STAGE_MBPS = 450.0
GLANCE_IMPORT_SECONDS = 8.5
TARGET_IMPORT_SECONDS = 0.5


def glance_direct(client: Client, item: Import, digests: tuple[str, str]) -> None:
    request = {"method": {"name": "glance-direct"}}
    image = timed_import(client, item, request, lambda image: image.get("status") == "active")
    if image:
        check_active(image, item, digests)


def warm_up(server: Server, client: Client, block: bytes) -> list[float]:
    """A request into every worker, then small stage + import runs; their seconds, not judged."""
    client.warm_every_worker(server.master)
    seconds = []
    for number in range(WARMUP_IMPORTS):
        image_id = client.create_image(f"bench-import-warmup-{number}")
        try:
            client.put_chunked(f"/v2/images/{image_id}/stage", block, 1)
            item = Import("warm-up", image_id, PIECE)
            glance_direct(client, item, digests_of(block, 1))
            if item.error:
                raise BenchError(f"warm-up import: {item.error}")
            seconds.append(item.seconds)
        finally:
            client.delete_image(image_id)
    return seconds


def stage_and_import(
    server: Server, payload: Payload
) -> tuple[list[Transfer], list[Import], list[float]]:
    client = Client(server.port)
    images: list[str] = []
    stages, imports = [], []
    with payload.source_file(server.data_dir) as source:
        try:
            warm = warm_up(server, client, payload.block)
            senders = payload.senders(client, source)
            for how in STAGE_ORDER:
                images.append(client.create_image(f"bench-import-{len(images) + 1}"))
                send = partial(senders[how], f"/v2/images/{images[-1]}/stage")
                stages.append(measure(Transfer(f"stage, {how}"), server.master, send))
            for number, (stage, image_id) in enumerate(zip(stages, images, strict=True), 1):
                item = Import(f"glance-direct #{number}", image_id, IMAGE_SIZE)
                if stage.error:
                    item.error = "not staged"
                else:
                    glance_direct(client, item, payload.digests)
                imports.append(item)
        finally:
            for image_id in images:
                client.delete_image(image_id)
    return stages, imports, warm


def copy_into(client: Client, item: Import, store: str, payload: Payload, root: Path) -> None:
    def copied(image: dict) -> bool:
        if store in (image.get("os_glance_failed_import") or "").split(","):
            raise BenchError(f"copy into {store} failed")
        present = (image.get("stores") or "").split(",")
        return store in present and not image.get("os_glance_importing_to_stores")

    request = {"method": {"name": "copy-image"}, "stores": [store]}
    image = timed_import(client, item, request, copied)
    if image is None:
        return
    check_active(image, item, payload.digests)
    with (root / store / item.image_id).open("rb") as copy:
        on_disk = hashlib.file_digest(copy, partial(hashlib.md5, usedforsecurity=False))
    same = on_disk.hexdigest() == payload.digests[0]
    item.checks.append("copy's MD5 on disk" + ("" if same else " WRONG"))
    if not same:
        item.error = "the copy's bytes differ"


def copy_images(payload: Payload) -> tuple[list[Import], list[float]]:
    """copy-image, which cannot be zero-copy, on a server with four file stores."""
    with tempfile.TemporaryDirectory(prefix="imageservice-bench-stores-") as temp:
        root = Path(temp)
        settings = {
            "ENABLED_BACKENDS": ",".join(f"{name}:{root / name}" for name in COPY_STORES),
            "DEFAULT_BACKEND": COPY_STORES[0],
            "DEMO_OPERATOR_TOKEN": OPERATOR_TOKEN,  # copy-image is admin-only (Glance's policy)
        }
        with (
            throwaway_server("imageservice-bench-copy-", settings) as server,
            payload.source_file(server.data_dir) as source,
        ):
            client = Client(server.port, OPERATOR_TOKEN)
            warm = warm_up(server, client, payload.block)
            image_id = client.create_image("bench-copy")
            copies = []
            try:
                client.put_with_length(f"/v2/images/{image_id}/file", source, IMAGE_SIZE)
                for store in COPY_STORES[1:]:
                    copies.append(Import(f"copy-image → {store}", image_id, IMAGE_SIZE))
                    copy_into(client, copies[-1], store, payload, root)
                    if copies[-1].error:
                        break
            finally:
                client.delete_image(image_id)
    return copies, warm


def print_stages(stages: list[Transfer]) -> None:
    columns = (*RATE_COLUMNS, ("server CPU s", 14, ".2f"), ("Glance MB/s", 13, ".0f"))
    table = Table("stage, 1 GiB", 26, columns, "target MB/s")
    table.print_header()
    for stage in stages:
        figures = (stage.mb_per_s, stage.mib_per_s, stage.seconds, stage.server_cpu)
        verdict = at_least(stage.mb_per_s, TARGET_STAGE_MBPS)
        table.print_row(stage.name, *figures, GLANCE_STAGE_MBPS, last=verdict)
    for stage in stages:
        if stage.error:
            print(f"  {stage.name}: FAILED ({stage.error})")


def print_imports(title: str, imports: list[Import], target: float | None) -> None:
    print()
    times = (("seconds", 9, ".3f"), ("POST s", 8, ".3f"), ("polls", 7, ""))
    table = Table(title, 26, (*times, ("Glance s", 10, ".1f")), "target s")
    table.print_header()
    for item in imports:
        table.print_row(item.name, item.seconds, item.post_seconds, item.polls)
    good = [item.seconds for item in imports if not item.error]
    if good and len(good) == len(imports):
        median = statistics.median(good)
        verdict = at_most(median, target) if target else "-"
        label = f"median of {len(good)}"
        table.print_row(label, median, "", "", GLANCE_IMPORT_SECONDS, last=verdict)
    print_outcomes(imports)


def seconds_list(values: list[float]) -> str:
    return ", ".join(f"{seconds:.3f}" for seconds in values)


def report_glance_direct(stages: list[Transfer], imports: list[Import], warm: list[float]) -> None:
    print(f"warm-up: {WARMUP_IMPORTS} imports of 1 MiB took {seconds_list(warm)} s", end="")
    print(" (first run of the job in a worker process)\n")
    print_stages(stages)
    print_imports("glance-direct, 1 GiB", imports, TARGET_IMPORT_SECONDS)
    print(
        "  seconds: POST /import sent -> GET showing active read (polled every "
        f"{POLL_INTERVAL * 1000:.0f} ms, one keep-alive connection); POST s: until its 202"
    )


def report_copies(copies: list[Import], warm: list[float]) -> None:
    stores = ", ".join(COPY_STORES)
    print(f"\ncopy-image: second server with stores {stores} (the image uploaded to", end="")
    print(f" {COPY_STORES[0]}); warm-up imports {seconds_list(warm)} s")
    print_imports("copy-image, 1 GiB", copies, None)
    good = [item.seconds for item in copies if not item.error]
    if good:
        median = statistics.median(good)
        print(f"  median {IMAGE_SIZE / median / 1e6:.0f} MB/s copied (read, hash, write)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-copy", action="store_true", help="skip the copy-image phase")
    options = parser.parse_args()
    payload = Payload.of(os.urandom(PIECE))  # every image is this block 1024 times
    with throwaway_server("imageservice-bench-import-") as server:
        broker = "Redis" if os.environ.get("REDIS_URL") else "ORM"
        print_setup(server, f"DATA_DIR {server.data_dir}", f"broker {broker}")
        stages, imports, warm = stage_and_import(server, payload)
        leftovers = server.leftovers("images", "staging")
    report_glance_direct(stages, imports, warm)
    if leftovers:
        print(f"left in the store or staging area after deleting: {leftovers}")
    failed = any(stage.error for stage in stages) or any(item.error for item in imports)
    if not options.no_copy:
        copies, warm = copy_images(payload)
        report_copies(copies, warm)
        failed = failed or any(item.error for item in copies) or not copies
    return 1 if failed or leftovers else 0


if __name__ == "__main__":
    run_benchmark(main)
