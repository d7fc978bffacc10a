"""Object-store benchmark: 1 GiB through imageservice into Swift and S3, beside the same bytes
sent straight to each store with swiftclient and boto3 in the same run, and the worker memory
of a 5 GiB upload into each.

A real Swift with its S3 API, an instance of its own (`common.swift_aio`), and a throw-away
server (`common.server.throwaway_server`) whose `swift` and `s3` stores come from a generated
`glance-api.conf`. Through imageservice, with requests as glanceclient and openstacksdk use it:
`PUT /v2/images/{id}/file` chunked and with Content-Length (1 MiB pieces from a generator), then
`GET /file`; straight to the store: an SLO of the same segments (swiftclient) or a multipart
upload of the same part size (boto3), then a GET. benchmarks/README.md describes the phases, the
bounds and the columns.

Run: ``.venv/bin/python benchmarks/stores.py [--no-big]`` (or ``make bench``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Protocol

import boto3
import requests
import swiftclient
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from common.client import TRANSFER_TIME_LIMIT, BenchError, Client
from common.machine import MachineLimits
from common.measure import Transfer, measure
from common.payload import (
    IMAGE_SIZE,
    PIECE,
    ImageStream,
    MiB,
    check_stored,
    digests_of,
    receive_image,
)
from common.procfs import child_pids, cpu_seconds
from common.report import Table, at_least, at_most, print_outcomes, print_setup
from common.server import HOST, Server, run_benchmark, throwaway_server
from common.swift_aio import SwiftAIO, bench_swift, default_state_dir

# An instance of its own beside any that tests use (scripts/README.md), on a tmpfs device that
# takes the 5 GiB upload.
SWIFT_SETTINGS = {
    "SWIFT_AIO_DIR": str(default_state_dir()),
    "SWIFT_AIO_PORT": "8097",
    "SWIFT_AIO_OBJECT_PORT": "6240",
    "SWIFT_AIO_CONTAINER_PORT": "6241",
    "SWIFT_AIO_ACCOUNT_PORT": "6242",
    "SWIFT_AIO_MEMCACHED_PORT": "11217",
    "SWIFT_AIO_TMPFS_SIZE": "8g",
}
STORES = ("swift", "s3")
# glance_store's default swift_store_large_object_size (5120 MB) would keep 1 GiB in one
# segment. At the default chunk size, 200 MB (glance_store's MB: 1000 × 1024 bytes), the image
# is segmented as glance_store segments every upload of unknown size.
SWIFT_FIRST_SEGMENT_MB = 200
S3_PART = 10 * MiB  # s3_store_large_object_chunk_size's default, 10 MB (the s3 store's MB: MiB)
DIRECT_PIECE = 8 * MiB  # what the generator gives swiftclient
DOWNLOAD_CHUNK = 8 * MiB  # iter_content, resp_chunk_size, iter_chunks
BIG_SIZE = 5 * IMAGE_SIZE
REQUEST_TIMEOUT = 60.0  # per socket operation
WARMUP_UPLOADS_MAX = 40  # per store
TARGET_RATIO = 0.8
TARGET_RSS_MIB = 150.0
FLAT_GROWTH_MIB = 8.0  # "flat": after the first quarter, RSS grows by less than this (data.py)
DIRECT_ERRORS = (swiftclient.ClientException, BotoCoreError, ClientError)

CONF = """\
[DEFAULT]
enabled_backends = swift:swift, s3:s3

[glance_store]
default_backend = swift

[swift]
swift_store_auth_address = {SWIFT_AUTH_URL}
swift_store_auth_version = {SWIFT_AUTH_VERSION}
swift_store_user = {SWIFT_USER}
swift_store_key = {SWIFT_KEY}
swift_store_container = {container}
swift_store_create_container_on_put = true
swift_store_large_object_size = {first_segment_mb}

[s3]
s3_store_host = {S3_ENDPOINT}
s3_store_access_key = {S3_ACCESS_KEY}
s3_store_secret_key = {S3_SECRET_KEY}
s3_store_bucket = {bucket}
s3_store_create_bucket_on_put = true
s3_store_bucket_url_format = path
s3_store_region_name = {S3_REGION}
"""


class Sized:
    """Pieces of known length: requests sends them with Content-Length instead of chunked."""

    def __init__(self, pieces: ImageStream):
        self.pieces = pieces
        self.size = len(pieces)

    def __iter__(self) -> Iterator[memoryview]:
        return iter(self.pieces)

    def __len__(self) -> int:
        return self.size


# How the body of `PUT /file` is framed, by the name its phase carries.
UPLOAD_BODIES: dict[str, Callable[[ImageStream], Iterable[memoryview]]] = {
    "chunked 1 MiB": iter,  # a generator: requests sends each piece as one chunk
    "Content-Length": Sized,
}


@dataclass
class Phase:
    """A measured transfer and the CPU the Swift servers spent during it."""

    transfer: Transfer
    swift_cpu: float = 0.0

    def per_gib(self, seconds: float) -> float:
        moved = self.transfer.bytes_moved
        return seconds * IMAGE_SIZE / moved if moved and not self.transfer.error else 0.0

    def rss_mib(self) -> tuple[float, float, float]:
        """Of the worker that served the phase, MiB: VmRSS before, peak, and how much the rest
        of the phase rose above its first quarter."""
        serving = self.transfer.memory.serving() if self.transfer.memory else None
        if serving is None:
            return 0.0, 0.0, 0.0
        return serving.rss_before / 1024, serving.peak / 1024, serving.growth / 1024


@dataclass
class Bench:
    """What every phase needs: the server, the Swift, the image's block, the demo user."""

    server: Server
    swift: SwiftAIO
    block: bytes
    client: Client
    session: requests.Session = field(default_factory=requests.Session)

    def url(self, image_id: str) -> str:
        return f"http://{HOST}:{self.server.port}/v2/images/{image_id}/file"

    def run(self, name: str, send: Callable[[Transfer], None]) -> Phase:
        before = self.swift.cpu_seconds()
        transfer = measure(Transfer(name), self.server.master, send, sample_memory=True)
        return Phase(transfer, self.swift.cpu_seconds() - before)

    def put(self, session: requests.Session, image_id: str, store: str, data: object) -> None:
        """`PUT /v2/images/{id}/file` into ``store``, as glanceclient's ``--store`` sends it."""
        headers = {
            "X-Auth-Token": self.client.token,
            "Content-Type": "application/octet-stream",
            "X-Image-Meta-Store": store,
        }
        response = session.put(
            self.url(image_id), data=data, headers=headers, timeout=REQUEST_TIMEOUT
        )
        if response.status_code != 204:
            raise BenchError(f"PUT answered {response.status_code}: {response.text[:300]}")

    def upload(
        self, image_id: str, store: str, how: str, transfer: Transfer, size: int = IMAGE_SIZE
    ) -> None:
        """1 MiB pieces from a generator, framed as ``how`` says."""
        limit = TRANSFER_TIME_LIMIT * size / IMAGE_SIZE
        pieces = ImageStream(self.block, size, PIECE, transfer.add_bytes, limit)
        self.put(self.session, image_id, store, UPLOAD_BODIES[how](pieces))

    def download(self, image_id: str, md5: str, transfer: Transfer) -> None:
        """`GET /file` read with ``iter_content``, compared with the image."""
        headers = {"X-Auth-Token": self.client.token}
        with self.session.get(
            self.url(image_id), headers=headers, stream=True, timeout=REQUEST_TIMEOUT
        ) as response:
            if response.status_code != 200:
                raise BenchError(f"GET answered {response.status_code}: {response.text[:300]}")
            receive_image(self.block, response.iter_content(DOWNLOAD_CHUNK), transfer, IMAGE_SIZE)
            content_md5 = response.headers.get("Content-MD5")
        if content_md5 != md5:
            raise BenchError(f"Content-MD5 {content_md5}, expected {md5}")
        transfer.checks.append("Content-MD5 matches")

    def verify(self, image_id: str, size: int, digests: tuple[str, str], phase: Phase) -> None:
        """After an upload: the server's record of the image carries what was sent."""
        transfer = phase.transfer
        if transfer.error:
            return
        status, image = self.client.request_json("GET", f"/v2/images/{image_id}")
        if status != 200:
            transfer.error = f"GET image answered {status}"
        elif not check_stored(image, size, digests, transfer.checks):
            transfer.error = "the stored image does not match what was sent"

    def warm_up(self, store: str) -> int:
        """1 MiB uploads into ``store`` on new connections until every worker has served one
        (the one whose CPU time grew most), so none sets up its store client in a measured
        phase; how many."""
        workers = child_pids(self.server.master)
        warmed: set[int] = set()
        uploads = 0
        while not warmed.issuperset(workers) and uploads < WARMUP_UPLOADS_MAX:
            image_id = self.client.create_image(f"bench-stores-warmup-{store}")
            try:
                before = {pid: cpu_seconds(pid) for pid in workers}
                with requests.Session() as fresh:  # a new connection: any worker may take it
                    self.put(fresh, image_id, store, self.block)
                warmed.add(max(workers, key=lambda pid: cpu_seconds(pid) - before[pid]))
                uploads += 1
            finally:
                self.client.delete_image(image_id)
        return uploads


class Direct(Protocol):
    """The store's container or bucket, straight through the store's own client library."""

    # Other ways of uploading the same bytes, measured too, by the name of their phase.
    extra_uploads: dict[str, Callable[[str, Transfer], None]]

    def adopt_layout(self, image_id: str) -> str: ...
    def upload(self, key: str, transfer: Transfer) -> None: ...
    def download(self, key: str, transfer: Transfer) -> None: ...
    def delete(self, key: str) -> None: ...
    def layout(self, key: str) -> str: ...


class DirectSwift:
    """python-swiftclient: an SLO of the segments imageservice wrote, each a chunked PUT."""

    def __init__(self, swift: SwiftAIO, container: str, block: bytes):
        self.container = container
        self.block = block
        self.segments = [IMAGE_SIZE]
        self.connection = swift.connection()
        self.extra_uploads = {}

    def sizes(self, name: str) -> list[int]:
        """The segment sizes of an SLO (of one plain object: its size)."""
        headers, body = self.connection.get_object(
            self.container, name, query_string="multipart-manifest=get"
        )
        if headers.get("x-static-large-object", "").lower() != "true":
            return [int(headers["content-length"])]
        return [entry["bytes"] for entry in json.loads(body)]

    def adopt_layout(self, image_id: str) -> str:
        self.segments = self.sizes(image_id)
        return self.layout(image_id)

    def layout(self, key: str) -> str:
        sizes = self.sizes(key)
        groups = [(size, sizes.count(size)) for size in dict.fromkeys(sizes)]
        return f"SLO of {len(sizes)} segments, " + " + ".join(
            f"{count} × {size}" if count > 1 else str(size) for size, count in groups
        )

    def upload(self, key: str, transfer: Transfer) -> None:
        manifest, start = [], 0
        for number, size in enumerate(self.segments, start=1):
            name = f"{key}-{number:05d}"
            pieces = ImageStream(self.block, size, DIRECT_PIECE, transfer.add_bytes, start=start)
            etag = self.connection.put_object(self.container, name, iter(pieces))
            manifest.append({"path": f"/{self.container}/{name}", "etag": etag, "size_bytes": size})
            start += size
        self.connection.put_object(
            self.container, key, json.dumps(manifest), query_string="multipart-manifest=put"
        )

    def download(self, key: str, transfer: Transfer) -> None:
        _, body = self.connection.get_object(self.container, key, resp_chunk_size=DOWNLOAD_CHUNK)
        receive_image(self.block, body, transfer, IMAGE_SIZE)

    def delete(self, key: str) -> None:
        self.connection.delete_object(self.container, key, query_string="multipart-manifest=delete")


class DirectS3:
    """boto3: its managed multipart upload of the same part size from a stream (its default
    concurrency, and one part at a time as imageservice sends them), then one GetObject; with
    the store's checksum settings."""

    def __init__(self, swift: SwiftAIO, bucket: str, block: bytes):
        env = swift.env
        self.bucket = bucket
        self.block = block
        self.client = boto3.client(
            "s3",
            endpoint_url=env["S3_ENDPOINT"],
            region_name=env["S3_REGION"],
            aws_access_key_id=env["S3_ACCESS_KEY"],
            aws_secret_access_key=env["S3_SECRET_KEY"],
            config=Config(
                # The store driver's signing, so both sides do the same work per byte.
                s3={
                    "addressing_style": env["S3_ADDRESSING_STYLE"],
                    "payload_signing_enabled": False,
                },
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )
        self.extra_uploads = {
            "direct upload, 1 part in flight": partial(self.upload, concurrency=1)
        }

    def adopt_layout(self, image_id: str) -> str:
        return self.layout(image_id)

    def layout(self, key: str) -> str:
        etag = self.client.head_object(Bucket=self.bucket, Key=key)["ETag"].strip('"')
        parts = etag.rpartition("-")[2] if "-" in etag else "1"
        return f"{parts} parts of {S3_PART}"

    def upload(self, key: str, transfer: Transfer, concurrency: int | None = None) -> None:
        stream = ImageStream(self.block, IMAGE_SIZE, PIECE, transfer.add_bytes)
        config = TransferConfig(multipart_threshold=S3_PART, multipart_chunksize=S3_PART)
        if concurrency:
            config.max_concurrency = concurrency
        self.client.upload_fileobj(stream, self.bucket, key, Config=config)

    def download(self, key: str, transfer: Transfer) -> None:
        body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        with contextlib.closing(body):
            receive_image(self.block, body.iter_chunks(DOWNLOAD_CHUNK), transfer, IMAGE_SIZE)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)


def direct_errors_fail(work: Callable[[Transfer], None]) -> Callable[[Transfer], None]:
    """The client libraries' errors as a failed phase, like the HTTP errors of imageservice."""

    def send(transfer: Transfer) -> None:
        try:
            work(transfer)
        except DIRECT_ERRORS as error:
            raise BenchError(f"{type(error).__name__}: {error}") from error

    return send


@dataclass
class StoreRun:
    """Everything measured for one store, by phase name, and the layouts the data took."""

    store: str
    phases: dict[str, Phase] = field(default_factory=dict)
    layouts: list[str] = field(default_factory=list)

    def add(self, phase: Phase) -> Phase:
        self.phases[phase.transfer.name] = phase
        return phase


def measure_store(bench: Bench, run: StoreRun, direct: Direct, digests: tuple[str, str]) -> None:
    """The 1 GiB phases of one store: through imageservice, then straight to the store."""
    store, images = run.store, []
    try:
        for how in UPLOAD_BODIES:
            images.append(bench.client.create_image(f"bench-stores-{store}-{len(images)}"))
            send = partial(bench.upload, images[-1], store, how)
            bench.verify(
                images[-1], IMAGE_SIZE, digests, run.add(bench.run(f"upload, {how}", send))
            )
        run.layouts.append(f"imageservice: {direct.adopt_layout(images[0])}")
        bench.client.delete_image(images.pop())
        run.add(bench.run("download", partial(bench.download, images[0], digests[0])))
        bench.client.delete_image(images.pop())
        with direct_object(direct) as key:
            run.add(bench.run("direct upload", direct_errors_fail(partial(direct.upload, key))))
            run.add(bench.run("direct download", direct_errors_fail(partial(direct.download, key))))
            with contextlib.suppress(*DIRECT_ERRORS):
                run.layouts.append(f"direct: {direct.layout(key)}")
        for name, upload in direct.extra_uploads.items():
            with direct_object(direct) as key:
                run.add(bench.run(name, direct_errors_fail(partial(upload, key))))
    finally:
        for image_id in images:
            bench.client.delete_image(image_id)


@contextlib.contextmanager
def direct_object(direct: Direct) -> Iterator[str]:
    """A new object name in the store, deleted afterwards."""
    key = f"direct-{uuid.uuid4().hex[:12]}"
    try:
        yield key
    finally:
        with contextlib.suppress(*DIRECT_ERRORS):
            direct.delete(key)


def measure_big(bench: Bench, run: StoreRun, direct: Direct, digests: tuple[str, str]) -> None:
    """One 5 GiB chunked upload into the store, the workers' memory sampled."""
    image_id = bench.client.create_image(f"bench-stores-{run.store}-big")
    try:
        send = partial(bench.upload, image_id, run.store, "chunked 1 MiB", size=BIG_SIZE)
        phase = run.add(bench.run("upload 5 GiB, chunked", send))
        bench.verify(image_id, BIG_SIZE, digests, phase)
        with contextlib.suppress(*DIRECT_ERRORS):
            run.layouts.append(f"imageservice, 5 GiB: {direct.layout(image_id)}")
    finally:
        bench.client.delete_image(image_id)


def print_rates(runs: list[StoreRun]) -> None:
    columns = (
        ("imageservice MB/s", 19, ".0f"),
        ("direct MB/s", 13, ".0f"),
        ("ratio", 7, ".2f"),
        ("target", 24, ""),
        ("server CPU s/GiB", 18, ".2f"),
        ("RSS before", 12, ".0f"),
        ("RSS peak", 10, ".0f"),
    )
    table = Table("store, phase", 32, columns)
    table.print_header()
    for run in runs:
        for name, phase in run.phases.items():
            if name.startswith("direct "):
                continue
            transfer = phase.transfer
            before, peak, growth = phase.rss_mib()
            served = (phase.per_gib(transfer.server_cpu), before, peak)
            if name.startswith("upload 5 GiB"):
                shape = "flat" if growth < FLAT_GROWTH_MIB else "GROWS"
                verdict = f"{shape}, RSS {at_most(peak, TARGET_RSS_MIB)}"
                table.print_row(
                    f"{run.store}: {name}", transfer.mb_per_s, "-", "-", verdict, *served
                )
                continue
            direct = run.phases.get("direct download" if name == "download" else "direct upload")
            direct_rate = direct.transfer.mb_per_s if direct else 0.0
            ratio = transfer.mb_per_s / direct_rate if direct_rate else 0.0
            table.print_row(
                f"{run.store}: {name}",
                *(transfer.mb_per_s, direct_rate or "-", ratio),
                at_least(ratio, TARGET_RATIO),
                *served,
            )
    print(
        "  ratio: imageservice MB/s over direct MB/s of the same run (uploads: over the direct"
        " upload); MB = 10^6 bytes.\n"
        "  server CPU: the gunicorn workers; RSS (MiB): VmRSS of the worker that served the phase"
        " before it, and its peak;\n  flat: after the first quarter of the phase, RSS rose by"
        f" less than {FLAT_GROWTH_MIB:.0f} MiB."
    )


def print_cpu(runs: list[StoreRun]) -> None:
    print()
    columns = (
        ("MB/s", 6, ".0f"),
        ("seconds", 9, ".2f"),
        ("client", 8, ".2f"),
        ("workers", 9, ".2f"),
        ("Swift", 7, ".2f"),
        ("total", 7, ".2f"),
        ("cores busy", 12, ".2f"),
    )
    table = Table("every phase; CPU s per GiB", 36, columns)
    table.print_header()
    for run in runs:
        for name, phase in run.phases.items():
            transfer = phase.transfer
            parts = (transfer.client_cpu, transfer.server_cpu, phase.swift_cpu)
            total = sum(parts)
            table.print_row(
                f"{run.store}: {name}",
                transfer.mb_per_s,
                transfer.seconds,
                *(phase.per_gib(cpu) for cpu in (*parts, total)),
                total / transfer.seconds if transfer.seconds else 0.0,
            )
    print(
        "  client: this process (requests, swiftclient, boto3); workers: imageservice's gunicorn"
        " workers;\n  Swift: its proxy (and workers), object, container, account servers and"
        f" memcached. {os.cpu_count()} CPUs."
    )


def print_layouts(runs: list[StoreRun]) -> None:
    for run in runs:
        print(f"\n{run.store}: layout in bytes: " + "; ".join(run.layouts))
        print_outcomes(phase.transfer for phase in run.phases.values())


@contextlib.contextmanager
def glance_conf(env: dict[str, str], container: str, bucket: str) -> Iterator[Path]:
    """The operator's glance-api.conf of the server: a swift and an s3 store on this Swift."""
    text = CONF.format(
        container=container, bucket=bucket, first_segment_mb=SWIFT_FIRST_SEGMENT_MB, **env
    )
    with tempfile.TemporaryDirectory(prefix="imageservice-bench-stores-") as temp:
        path = Path(temp) / "glance-api.conf"
        path.write_text(text)
        yield path


def benchmark(bench: Bench, containers: dict[str, str], digests, big_digests) -> list[StoreRun]:
    directs = {
        "swift": DirectSwift(bench.swift, containers["swift"], bench.block),
        "s3": DirectS3(bench.swift, containers["s3"], bench.block),
    }
    lists = bench.client.warm_every_worker(bench.server.master)
    warm = {store: bench.warm_up(store) for store in STORES}
    print(
        f"warm-up: {lists} list requests; 1 MiB "
        "uploads until every worker wrote to each store: "
        + ", ".join(f"{store} {count}" for store, count in warm.items())
        + "\n",
        flush=True,
    )
    runs = [StoreRun(store) for store in STORES]
    # Store by store, the 5 GiB after the 1 GiB phases: the Swift figures then do not carry
    # what the worker's allocator keeps after S3 writes (10-25 MiB, see docs/benchmarks.md).
    for run in runs:
        measure_store(bench, run, directs[run.store], digests)
        if big_digests:
            measure_big(bench, run, directs[run.store], big_digests)
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--no-big", action="store_true", help="without the 5 GiB upload into each store"
    )
    args = parser.parse_args()
    block = os.urandom(PIECE)  # the image is this block repeated
    limits = MachineLimits()
    digests = limits.hash_one_pass(block).digests
    limits.hash_two_threads(block)
    suffix = uuid.uuid4().hex[:12]
    # s3api keeps buckets as containers of the same account: the names must differ.
    containers = {"swift": f"bench-swift-{suffix}", "s3": f"bench-s3-{suffix}"}
    every_container = [*containers.values(), f"{containers['s3']}+segments"]
    with ThreadPoolExecutor(max_workers=1) as hashing:
        # The 5 GiB digests are computed while Swift and the server start.
        big = None if args.no_big else hashing.submit(digests_of, block, BIG_SIZE // PIECE)
        with bench_swift(SWIFT_SETTINGS) as swift:
            try:
                with (
                    glance_conf(swift.env, containers["swift"], containers["s3"]) as conf,
                    throwaway_server(
                        "imageservice-bench-stores-", {"GLANCE_API_CONF": str(conf)}
                    ) as server,
                ):
                    how = "started" if swift.started_here else "already running"
                    print_setup(
                        server,
                        f"Swift {how} ({swift.start_seconds:.1f} s): {swift.env['SWIFT_AUTH_URL']}"
                        f", state {swift.state_dir}",
                        f"1 GiB = {IMAGE_SIZE} bytes",
                    )
                    big_digests = big.result() if big else None
                    bench = Bench(server, swift, block, Client(server.port))
                    runs = benchmark(bench, containers, digests, big_digests)
                left = swift.objects(every_container)
            finally:
                swift.remove(every_container)
    print_rates(runs)
    print_cpu(runs)
    print_layouts(runs)
    limits.print_table()
    if left:
        print(f"left in the store after deleting: {left}")
    failed = any(phase.transfer.error for run in runs for phase in run.phases.values())
    return 1 if failed or left else 0


if __name__ == "__main__":
    run_benchmark(main)
