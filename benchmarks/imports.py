"""Image import benchmark: staging and glance-direct imports against a real `make run` server.

Self-contained, like `api.py` and `data.py`: a temporary DATA_DIR, `migrate` + `seed_demo` there,
`manage.py serve` (gunicorn plus the real django-q2 `qcluster` worker, exactly as `make run`) on
a free loopback port (`common.throwaway_server`). From this process, as the demo user:

- `PUT /v2/images/{id}/stage` of 1 GiB with Content-Length (sendfile(2) from a file), with
  hand-framed chunked encoding (1 MiB chunks), and once more with Content-Length: three images;
- `POST /v2/images/{id}/import` (glance-direct) for each, timed until `GET /v2/images/{id}`
  (polled every 20 ms on a keep-alive connection) shows `active`; the median of the three is the
  figure. The active image must carry the size, MD5 and SHA-512 of the bytes sent;
- optionally (on by default, ``--no-copy`` skips it) a copy that cannot be zero-copy: a second
  throw-away server with four file stores (``ENABLED_BACKENDS``), one 1 GiB image uploaded to
  the first, then `copy-image` into each of the three others, timed until the image lists the
  store, the copy's MD5 checked on disk.

Every loop is bounded in count and in time; traffic goes only to 127.0.0.1; images are deleted,
the servers stopped and the directories removed on success, failure and Ctrl-C.

Run: ``.venv/bin/python benchmarks/imports.py`` (or ``make bench``).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from common import (
    BENCH_TOKEN,
    HOST,
    REQUEST_TIMEOUT,
    BenchError,
    Server,
    check_deadline,
    child_pids,
    cpu_seconds,
    put_chunked,
    put_with_length,
    raise_interrupt,
    throwaway_server,
)

MiB = 1024 * 1024
PIECE = MiB  # the source block and the chunk size of the chunked stage
PIECES = 1024
IMAGE_SIZE = PIECE * PIECES  # 1 GiB
POLL_INTERVAL = 0.02
IMPORT_TIME_LIMIT = 60.0  # POST /import to active, per import
TASK_CHECK_EVERY = 25  # polls: while the image still shows `uploading`, look at its task
# A random pause before each timed import. Back to back, an import would be posted right after
# the job worker's broker poll found the previous one, and always wait a whole poll interval
# (django-q2's ORM broker sleeps `poll`, 0.2 s, after an empty look); Glance's users do not
# import in step with the worker.
GAP_SECONDS = (0.25, 0.75)
COPY_STORES = ("one", "two", "three", "four")  # the image lands in the first, copies go on
WARMUP_REQUESTS_MAX = 400
WARMUP_CPU_SECONDS = 0.03
OPERATOR_TOKEN = "bench-operator-token-0123456789abcdef"
WARMUP_IMPORTS = 2  # small imports first, so each django-q2 worker process has run the job once

# Glance on the same kind of machine (from the issue) and the targets.
GLANCE_STAGE_MBPS = 144.0
TARGET_STAGE_MBPS = 450.0
GLANCE_IMPORT_SECONDS = 8.5
TARGET_IMPORT_SECONDS = 0.5


# --- HTTP -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Api:
    port: int
    token: str = BENCH_TOKEN


def connect(api: Api) -> http.client.HTTPConnection:
    return http.client.HTTPConnection(HOST, api.port, timeout=REQUEST_TIMEOUT)


def json_request(api: Api, method: str, path: str, document: dict | None = None):
    connection = connect(api)
    try:
        return send_json(api, connection, method, path, document)
    finally:
        connection.close()


def send_json(
    api: Api, connection: http.client.HTTPConnection, method: str, path: str, document=None
):
    headers = {"X-Auth-Token": api.token}
    body = None
    if document is not None:
        headers["Content-Type"] = "application/json"
        body = json.dumps(document).encode()
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    payload = response.read()
    try:
        parsed = json.loads(payload) if payload else None
    except ValueError:
        parsed = payload[:300]
    return response.status, parsed


def create_image(api: Api, name: str) -> str:
    document = {"name": name, "disk_format": "raw", "container_format": "bare"}
    status, image = json_request(api, "POST", "/v2/images", document)
    if status != 201:
        raise BenchError(f"POST /v2/images answered {status}: {image}")
    return image["id"]


def delete_image(api: Api, image_id: str) -> None:
    with contextlib.suppress(OSError, http.client.HTTPException):
        json_request(api, "DELETE", f"/v2/images/{image_id}")


def get_image(api: Api, image_id: str) -> dict:
    status, image = json_request(api, "GET", f"/v2/images/{image_id}")
    if status != 200:
        raise BenchError(f"GET /v2/images/{image_id} answered {status}: {image}")
    return image


def latest_task(api: Api, image_id: str) -> dict | None:
    status, body = json_request(api, "GET", f"/v2/images/{image_id}/tasks")
    tasks = body.get("tasks", []) if status == 200 and isinstance(body, dict) else []
    return max(tasks, key=lambda task: task.get("created_at", ""), default=None)


# --- sending 1 GiB ----------------------------------------------------------------------------


# --- measured operations ----------------------------------------------------------------------


@dataclass
class Stage:
    name: str
    image_id: str
    seconds: float = 0.0
    server_cpu: float = 0.0
    error: str | None = None

    @property
    def mb_per_s(self) -> float:
        return IMAGE_SIZE / self.seconds / 1e6 if self.seconds and not self.error else 0.0


@dataclass
class Import:
    name: str
    image_id: str
    size: int
    post_seconds: float = 0.0  # POST sent → 202 read
    seconds: float = 0.0  # POST sent → a GET showing `active` read
    polls: int = 0
    error: str | None = None
    checks: list[str] = field(default_factory=list)


def workers_cpu(server: Server) -> float:
    return sum(cpu_seconds(pid) for pid in child_pids(server.master))


def measure_stage(server: Server, stage: Stage, send: Callable[[str], None]) -> Stage:
    cpu_before = workers_cpu(server)
    started = time.perf_counter()
    try:
        send(f"/v2/images/{stage.image_id}/stage")
    except (OSError, http.client.HTTPException, BenchError) as error:
        stage.error = f"{type(error).__name__}: {error}"
    stage.seconds = time.perf_counter() - started
    stage.server_cpu = workers_cpu(server) - cpu_before
    return stage


def poll_until(
    api: Api, image_id: str, done: Callable[[dict], bool], item: Import, deadline: float
) -> dict:
    """GET the image every POLL_INTERVAL on one keep-alive connection until `done` says so."""
    connection = connect(api)
    path = f"/v2/images/{image_id}"
    try:
        next_poll = time.perf_counter()
        while True:
            check_deadline(deadline, IMPORT_TIME_LIMIT)
            try:
                status, image = send_json(api, connection, "GET", path)
            except (OSError, http.client.HTTPException):
                connection.close()  # the server closed the idle connection: once more, afresh
                status, image = send_json(api, connection, "GET", path)
            item.polls += 1
            if status != 200:
                raise BenchError(f"GET image answered {status}: {image}")
            if done(image):
                return image
            if image.get("status") not in {"uploading", "importing", "active"}:
                raise BenchError(f"image went {image.get('status')}")
            if item.polls % TASK_CHECK_EVERY == 0:
                task = latest_task(api, image_id)
                if task and task.get("status") == "failure":
                    raise BenchError(f"import task failed: {task.get('message')}")
            next_poll += POLL_INTERVAL
            time.sleep(max(0.0, next_poll - time.perf_counter()))
    finally:
        connection.close()


def timed_import(
    api: Api, item: Import, request: dict, done: Callable[[dict], bool]
) -> dict | None:
    time.sleep(random.uniform(*GAP_SECONDS))
    deadline = time.monotonic() + IMPORT_TIME_LIMIT
    started = time.perf_counter()
    try:
        status, body = json_request(api, "POST", f"/v2/images/{item.image_id}/import", request)
        item.post_seconds = time.perf_counter() - started
        if status != 202:
            raise BenchError(f"POST /import answered {status}: {body}")
        image = poll_until(api, item.image_id, done, item, deadline)
    except (OSError, http.client.HTTPException, BenchError) as error:
        item.error = f"{type(error).__name__}: {error}"
        return None
    finally:
        item.seconds = time.perf_counter() - started
    return image


def glance_direct(api: Api, item: Import, digests: tuple[str, str]) -> None:
    image = timed_import(
        api,
        item,
        {"method": {"name": "glance-direct"}},
        lambda image: image.get("status") == "active",
    )
    if image is not None:
        verify(image, item, digests)


def verify(image: dict, item: Import, digests: tuple[str, str]) -> None:
    md5, sha512 = digests
    checks = {
        f"status {image.get('status')}": image.get("status") == "active",
        f"size {image.get('size')}": image.get("size") == item.size,
        "checksum (MD5)": image.get("checksum") == md5,
        f"os_hash_value ({image.get('os_hash_algo')})": image.get("os_hash_value") == sha512,
    }
    for label, ok in checks.items():
        item.checks.append(label + ("" if ok else " WRONG"))
    if not all(checks.values()):
        item.error = "the active image does not carry the hashes of the data sent"


# --- warm-up ----------------------------------------------------------------------------------


def warm_up(server: Server, api: Api, block: bytes) -> list[float]:
    """Every gunicorn worker serves a request, then WARMUP_IMPORTS small stage + import runs.

    Returns the seconds of the small imports (the first one on each django-q2 worker process
    imports the job's code), unmeasured otherwise.
    """
    workers = child_pids(server.master)
    before = {pid: cpu_seconds(pid) for pid in workers}
    for _ in range(WARMUP_REQUESTS_MAX):
        if all(cpu_seconds(pid) - before[pid] >= WARMUP_CPU_SECONDS for pid in workers):
            break
        connection = connect(api)
        headers = {"X-Auth-Token": api.token, "Connection": "close"}
        connection.request("GET", "/v2/images?limit=1", headers=headers)
        connection.getresponse().read()
        connection.close()
    seconds = []
    digests = (
        hashlib.md5(block, usedforsecurity=False).hexdigest(),
        hashlib.sha512(block).hexdigest(),
    )
    for number in range(WARMUP_IMPORTS):
        image_id = create_image(api, f"bench-import-warmup-{number}")
        try:
            put_chunked(api.port, f"/v2/images/{image_id}/stage", block, 1, token=api.token)
            item = Import("warm-up", image_id, len(block))
            glance_direct(api, item, digests)
            if item.error:
                raise BenchError(f"warm-up import: {item.error}")
            seconds.append(item.seconds)
        finally:
            delete_image(api, image_id)
    return seconds


def digests_of(block: bytes) -> tuple[str, str]:
    md5 = hashlib.md5(usedforsecurity=False)
    sha512 = hashlib.sha512()
    for _ in range(PIECES):
        md5.update(block)
        sha512.update(block)
    return md5.hexdigest(), sha512.hexdigest()


def write_source(path: Path, block: bytes) -> None:
    with path.open("wb") as handle:
        for _ in range(PIECES):
            handle.write(block)
        handle.flush()
        os.fdatasync(handle.fileno())


# --- the glance-direct run --------------------------------------------------------------------


def stage_and_import(
    server: Server, block: bytes, digests: tuple[str, str]
) -> tuple[list[Stage], list[Import], list[float]]:
    api = Api(server.port)
    source = server.data_dir / "source.bin"
    images: list[str] = []
    try:
        write_source(source, block)
        warm = warm_up(server, api, block)
        senders: list[tuple[str, Callable[[str], None]]] = [
            (
                "stage, Content-Length",
                lambda path: put_with_length(api.port, path, source, IMAGE_SIZE),
            ),
            ("stage, chunked 1 MiB", lambda path: put_chunked(api.port, path, block, PIECES)),
            (
                "stage, Content-Length",
                lambda path: put_with_length(api.port, path, source, IMAGE_SIZE),
            ),
        ]
        stages = []
        for number, (name, send) in enumerate(senders, 1):
            images.append(create_image(api, f"bench-import-{number}"))
            stages.append(measure_stage(server, Stage(name, images[-1]), send))
        imports = []
        for number, stage in enumerate(stages, 1):
            item = Import(f"glance-direct #{number}", stage.image_id, IMAGE_SIZE)
            if stage.error:
                item.error = "not staged"
            else:
                glance_direct(api, item, digests)
            imports.append(item)
    finally:
        for image_id in images:
            delete_image(api, image_id)
        source.unlink(missing_ok=True)
    return stages, imports, warm


# --- copy-image: a copy that cannot be zero-copy ----------------------------------------------


@contextlib.contextmanager
def multi_store_server(stores_root: Path) -> Iterator[Server]:
    backends = ",".join(f"{name}:{stores_root / name}" for name in COPY_STORES)
    settings = {
        "ENABLED_BACKENDS": backends,
        "DEFAULT_BACKEND": COPY_STORES[0],
        "DEMO_OPERATOR_TOKEN": OPERATOR_TOKEN,  # copy-image is admin-only (Glance's policy)
    }
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        with throwaway_server("imageservice-bench-copy-") as server:
            yield server
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def md5_of_file(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        while chunk := handle.read(8 * MiB):
            digest.update(chunk)
    return digest.hexdigest()


def copy_into(api: Api, item: Import, store: str, digests: tuple[str, str], root: Path) -> None:
    def copied(image: dict) -> bool:
        present = (image.get("stores") or "").split(",")
        if store in (image.get("os_glance_failed_import") or "").split(","):
            raise BenchError(f"copy into {store} failed")
        return store in present and not image.get("os_glance_importing_to_stores")

    request = {"method": {"name": "copy-image"}, "stores": [store]}
    image = timed_import(api, item, request, copied)
    if image is None:
        return
    verify(image, item, digests)
    on_disk = md5_of_file(root / store / item.image_id)
    item.checks.append("copy's MD5 on disk" + ("" if on_disk == digests[0] else " WRONG"))
    if on_disk != digests[0]:
        item.error = "the copy's bytes differ"


def copy_images(block: bytes, digests: tuple[str, str]) -> tuple[list[Import], list[float]]:
    with (
        tempfile.TemporaryDirectory(prefix="imageservice-bench-stores-") as temp,
        multi_store_server(Path(temp)) as server,
    ):
        root, api = Path(temp), Api(server.port, OPERATOR_TOKEN)
        source = server.data_dir / "source.bin"
        image_id = None
        try:
            write_source(source, block)
            warm = warm_up(server, api, block)
            image_id = create_image(api, "bench-copy")
            path = f"/v2/images/{image_id}/file"
            put_with_length(api.port, path, source, IMAGE_SIZE, token=api.token)
            copies = []
            for store in COPY_STORES[1:]:
                item = Import(f"copy-image → {store}", image_id, IMAGE_SIZE)
                copy_into(api, item, store, digests, root)
                copies.append(item)
                if item.error:
                    break
        finally:
            if image_id:
                delete_image(api, image_id)
            source.unlink(missing_ok=True)
        return copies, warm


# --- report -----------------------------------------------------------------------------------


def print_stages(stages: list[Stage]) -> None:
    header = (
        f"{'stage, 1 GiB':<26}{'MB/s':>7}{'MiB/s':>7}{'seconds':>9}{'server CPU s':>14}"
        f"{'Glance MB/s':>13}  target MB/s"
    )
    print(header)
    print("-" * len(header))
    for stage in stages:
        verdict = "PASS" if stage.mb_per_s >= TARGET_STAGE_MBPS else "BELOW"
        print(
            f"{stage.name:<26}{stage.mb_per_s:>7.0f}{stage.mb_per_s * 1e6 / MiB:>7.0f}"
            f"{stage.seconds:>9.2f}{stage.server_cpu:>14.2f}{GLANCE_STAGE_MBPS:>13.0f}"
            f"  >= {TARGET_STAGE_MBPS:.0f} {verdict}"
        )
    for stage in stages:
        if stage.error:
            print(f"  {stage.name}: FAILED ({stage.error})")


def print_imports(title: str, imports: list[Import], target: float | None) -> None:
    print()
    header = f"{title:<26}{'seconds':>9}{'POST s':>8}{'polls':>7}{'Glance s':>10}  target s"
    print(header)
    print("-" * len(header))
    for item in imports:
        print(f"{item.name:<26}{item.seconds:>9.3f}{item.post_seconds:>8.3f}{item.polls:>7}")
    good = [item.seconds for item in imports if not item.error]
    if good and len(good) == len(imports):
        median = statistics.median(good)
        verdict = f"<= {target:g} {'PASS' if median <= target else 'BELOW'}" if target else "-"
        label = f"median of {len(good)}"
        print(f"{label:<26}{median:>9.3f}{'':>15}{GLANCE_IMPORT_SECONDS:>10.1f}  {verdict}")
    for item in imports:
        outcome = f"FAILED ({item.error})" if item.error else "ok"
        print(f"  {item.name}: {outcome}; {', '.join(item.checks) or 'no checks'}")


def describe(server: Server) -> None:
    print(
        f"manage.py serve on {HOST}:{server.port}: {len(child_pids(server.master))} gunicorn "
        f"workers + qcluster; {os.cpu_count()} CPUs; DATA_DIR {server.data_dir}; "
        f"broker {'Redis' if os.environ.get('REDIS_URL') else 'ORM'}",
        flush=True,
    )


# --- main -------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-copy", action="store_true", help="skip the copy-image phase")
    options = parser.parse_args()
    signal.signal(signal.SIGTERM, raise_interrupt)
    block = os.urandom(PIECE)  # every image is this block 1024 times
    digests = digests_of(block)
    with throwaway_server("imageservice-bench-import-") as server:
        describe(server)
        stages, imports, warm = stage_and_import(server, block, digests)
        leftovers = [path.name for path in (server.data_dir / "images").glob("*")]
        leftovers += [path.name for path in (server.data_dir / "staging").glob("*")]
    print(
        f"warm-up: {WARMUP_IMPORTS} imports of 1 MiB took "
        + ", ".join(f"{seconds:.3f}" for seconds in warm)
        + " s (first run of the job in a worker process)\n"
    )
    print_stages(stages)
    print_imports("glance-direct, 1 GiB", imports, TARGET_IMPORT_SECONDS)
    print(
        "  seconds: POST /import sent -> GET showing active read (polled every "
        f"{POLL_INTERVAL * 1000:.0f} ms, one keep-alive connection); POST s: until its 202"
    )
    if leftovers:
        print(f"left in the store or staging area after deleting: {leftovers}")
    failed = any(stage.error for stage in stages) or any(item.error for item in imports)
    if not options.no_copy:
        print()
        copies, warm = copy_images(block, digests)
        print(
            f"copy-image: second server with stores {', '.join(COPY_STORES)} (the image uploaded "
            f"to {COPY_STORES[0]}); warm-up imports "
            + ", ".join(f"{seconds:.3f}" for seconds in warm)
            + " s"
        )
        print_imports("copy-image, 1 GiB", copies, None)
        good = [item.seconds for item in copies if not item.error]
        if good:
            median = statistics.median(good)
            print(f"  median {IMAGE_SIZE / median / 1e6:.0f} MB/s copied (read, hash, write)")
        failed = failed or any(item.error for item in copies) or not copies
    return 1 if failed or leftovers else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; server stopped", file=sys.stderr)
        sys.exit(130)
