"""The scale-out chaos test (``make cluster-test``): two API nodes and two job workers on
PostgreSQL, Redis and a Swift of their own, one of each killed mid-run, then checked.

Topology, all on this machine and each node with its own ``DATA_DIR`` and port (nothing is shared
on local disk but the configuration):

- ``api1``, ``api2``: ``manage.py serve --role api``; ``worker1``, ``worker2``: ``--role worker``;
- PostgreSQL (``CLUSTER_DATABASE_URL``, recreated), Redis (``CLUSTER_REDIS_URL``, a queue name
  of this run's own), a private Swift (``scripts/swift-aio.sh`` with ports of its own) holding
  the image stores ``objects`` (Swift) and ``cheap`` (S3 through Swift's s3api) and the staging
  area (``[os_glance_staging_store] store_type = swift``, a container of its own);
- a loopback web server that web-download fetches from (allowed by the operator settings).

The run: 20 uploads (``PUT /file`` on one node, downloaded through the other) and 50 imports at
once, spread over both API nodes: 25 glance-direct (staged on one node, imported on the other),
15 web-download and 10 copy-image from ``objects`` into ``cheap``. When a third of the imports
are accepted, ``worker1`` and ``api1`` get ``kill -9`` (their whole process groups) and are
started again a few seconds later. A request refused by the dead node is sent to the other one,
as a load balancer would; one cut by the kill counts as cut, and its work is retried.

Then the housekeeping the schedules run (``recover_imports``, ``recover_uploads`` once the
shortened stale timeouts passed; ``cleanup_staging``, ``cleanup_stores``), one retry of each
image left retryable, and the checks, printed as a table; the exit status is 1 when any fails:

- every image ``active`` with the right size and sha512, read back through the other node, each
  at most one retry;
- 0 images or tasks stuck past the stale timeout;
- 0 lost bytes (every byte sent is read back);
- 0 responses 5xx (connections cut by the kill are counted apart);
- no orphaned objects, segments, multipart uploads or staged data in the stores, and nothing
  left in the nodes' staging or work directories.

``--break-recovery`` skips the recovery step, to see the checks fail (what a cluster without
``recover_imports``/``recover_uploads`` would leave). ``--keep`` leaves the nodes, database and
Swift running for a look afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import boto3
import psycopg
import swiftclient
from botocore.config import Config

ROOT = Path(__file__).resolve().parent.parent
SWIFT_AIO = ROOT / "scripts" / "swift-aio.sh"
MiB = 1024 * 1024
# A Swift of this test's own (scripts/README.md: instances side by side), so killing and
# checking never disturbs another suite's.
# Ports nobody else here uses by default; taken ones are replaced by free ones (choose_ports).
SWIFT_ENV = {
    "SWIFT_AIO_DIR": os.path.join(tempfile.gettempdir(), "imageservice-swift-cluster"),
    "SWIFT_AIO_PORT": "18097",
    "SWIFT_AIO_OBJECT_PORT": "16230",
    "SWIFT_AIO_CONTAINER_PORT": "16231",
    "SWIFT_AIO_ACCOUNT_PORT": "16232",
    "SWIFT_AIO_MEMCACHED_PORT": "11807",
    "SWIFT_AIO_TMPFS_SIZE": "1g",
    # Readiness on a busy machine (starting Swift beside migrate and four nodes) takes longer.
    "SWIFT_AIO_TIMEOUT": "180",
}
STALE_SECONDS = 25  # IMPORT_STALE_SECONDS and UPLOAD_STALE_SECONDS (heartbeats: 15 s, 10 s)
OPERATOR_TOKEN = "cluster-operator-token"
USER_TOKEN = "cluster-user-token"
COUNTS = {"upload": 20, "glance-direct": 25, "web-download": 15, "copy-image": 10}
SIZES = (1 * MiB, 2 * MiB + 17, 3 * MiB + 1, 4 * MiB)
BUDGET_SECONDS = 330
CONTAINERS = ("cluster-images", "cluster-staging", "cluster-cheap", "cluster-cheap+segments")

CONF = """\
[DEFAULT]
enabled_backends = objects:swift, cheap:s3

[glance_store]
default_backend = objects

[objects]
swift_store_auth_address = {SWIFT_AUTH_URL}
swift_store_auth_version = {SWIFT_AUTH_VERSION}
swift_store_user = {SWIFT_USER}
swift_store_key = {SWIFT_KEY}
swift_store_container = cluster-images
swift_store_create_container_on_put = true
swift_store_large_object_size = 2
swift_store_large_object_chunk_size = 1

[cheap]
s3_store_host = {S3_ENDPOINT}
s3_store_access_key = {S3_ACCESS_KEY}
s3_store_secret_key = {S3_SECRET_KEY}
s3_store_region_name = {S3_REGION}
s3_store_bucket = cluster-cheap
s3_store_bucket_url_format = path
s3_store_create_bucket_on_put = true
s3_store_large_object_size = 5
s3_store_large_object_chunk_size = 5

[os_glance_staging_store]
store_type = swift
swift_store_auth_address = {SWIFT_AUTH_URL}
swift_store_auth_version = {SWIFT_AUTH_VERSION}
swift_store_user = {SWIFT_USER}
swift_store_key = {SWIFT_KEY}
swift_store_container = cluster-staging
swift_store_create_container_on_put = true
swift_store_large_object_size = 2
swift_store_large_object_chunk_size = 1
"""


def payload(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


# --- the stats every request feeds -----------------------------------------------------------


@dataclass
class Stats:
    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: Counter = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    cut: int = 0
    refused: int = 0
    bytes_sent: int = 0
    bytes_read_back: int = 0

    def record(self, node: str, method: str, path: str, status: int) -> None:
        with self.lock:
            self.statuses[status] += 1
            if status >= 500:
                self.server_errors.append(f"{status} {method} {path} on {node}")


STATS = Stats()


class Cut(Exception):
    """The connection broke after the request was sent (the node was killed)."""


class Refused(Exception):
    """Nothing listens: the node is down."""


# --- nodes -----------------------------------------------------------------------------------


@dataclass
class Node:
    name: str
    role: str
    port: int
    env: dict[str, str]
    log: Path
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "manage.py",
                    "serve",
                    "--role",
                    self.role,
                    "--port",
                    str(self.port),
                ],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # one group: kill -9 takes the whole node
            )

    def kill(self) -> None:
        """``kill -9`` of the node's whole process group: a crash, a pulled plug."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # whatever of the group is left

    def wait_serving(self, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.name} exited:\n{self.log.read_text()[-3000:]}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                connection.request("GET", "/versions")
                if connection.getresponse().status == 200:
                    return
            time.sleep(0.2)
        raise SystemExit(
            f"{self.name} did not serve in {seconds} s:\n{self.log.read_text()[-3000:]}"
        )


class Api:
    """Requests to the API nodes; one refused by a dead node goes to the other one."""

    def __init__(self, nodes: list[Node]):
        self.nodes = nodes

    def call(
        self,
        prefer: int,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict | None = None,
        token: str = USER_TOKEN,
    ) -> tuple[int, bytes]:
        for attempt in range(4):
            node = self.nodes[(prefer + attempt) % len(self.nodes)]
            try:
                return self._send(node, method, path, body, headers, token)
            except Refused:
                with STATS.lock:
                    STATS.refused += 1
                time.sleep(0.5)
        raise Cut(f"{method} {path}: no API node answered")

    def _send(self, node, method, path, body, headers, token) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", node.port, timeout=120)
        try:
            connection.request(
                method, path, body=body, headers={"X-Auth-Token": token, **(headers or {})}
            )
        except ConnectionRefusedError as error:
            raise Refused(node.name) from error
        except (OSError, http.client.HTTPException) as error:
            raise self._cut(node, method, path, error) from error
        try:
            response = connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as error:
            raise self._cut(node, method, path, error) from error
        finally:
            connection.close()
        STATS.record(node.name, method, path, response.status)
        return response.status, data

    @staticmethod
    def _cut(node: Node, method: str, path: str, error: BaseException) -> Cut:
        with STATS.lock:
            STATS.cut += 1
        return Cut(f"{method} {path} on {node.name}: {error}")


# --- the workload ----------------------------------------------------------------------------


@dataclass
class Job:
    kind: str
    number: int
    seed: int
    size: int
    image_id: str = ""
    source_id: str = ""  # copy-image: the image copied
    retries: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def node(self) -> int:
        return self.number % 2

    @property
    def other(self) -> int:
        return 1 - self.node

    @property
    def data(self) -> bytes:
        return payload(self.seed, self.size)


class Workload:
    def __init__(self, api: Api, source_port: int):
        self.api = api
        self.source_port = source_port
        self.accepted = 0
        self.lock = threading.Lock()

    def create(self, job: Job) -> str:
        body = json.dumps(
            {"name": f"{job.kind}-{job.number}", "disk_format": "raw", "container_format": "bare"}
        ).encode()
        status, data = self.api.call(
            job.node, "POST", "/v2/images", body, {"Content-Type": "application/json"}
        )
        assert status == 201, (status, data)
        return json.loads(data)["id"]

    def put_data(self, job: Job, path: str) -> int:
        data = job.data
        status, _ = self.api.call(
            job.node, "PUT", f"/v2/images/{job.image_id}/{path}", data,
            {"Content-Type": "application/octet-stream"},
        )  # fmt: skip
        if status == 204:
            with STATS.lock:
                STATS.bytes_sent += len(data)
        return status

    def start_import(self, job: Job, method: dict, stores: list[str] | None = None) -> int:
        body = {"method": method, **({"stores": stores} if stores else {})}
        token = OPERATOR_TOKEN if method["name"] == "copy-image" else USER_TOKEN
        image_id = job.source_id if method["name"] == "copy-image" else job.image_id
        status, data = self.api.call(
            job.other, "POST", f"/v2/images/{image_id}/import", json.dumps(body).encode(),
            {"Content-Type": "application/json"}, token=token,
        )  # fmt: skip
        if status == 202:
            with self.lock:
                self.accepted += 1
        else:
            job.notes.append(f"import answered {status}: {data[:200]!r}")
        return status

    def show(self, job: Job, image_id: str, prefer: int) -> dict:
        status, data = self.api.call(prefer, "GET", f"/v2/images/{image_id}", token=OPERATOR_TOKEN)
        assert status == 200, (status, data)
        return json.loads(data)

    def run(self, job: Job) -> None:
        """The job's first try; any failure leaves it for the retry after recovery."""
        try:
            self._run(job)
        except (Cut, AssertionError) as error:
            job.notes.append(f"first try: {error}")

    def _run(self, job: Job) -> None:
        if job.kind == "copy-image":
            self.start_import(job, {"name": "copy-image"}, ["cheap"])
            return
        job.image_id = self.create(job)
        if job.kind == "upload":
            self.put_data(job, "file")
        elif job.kind == "glance-direct":
            if self.put_data(job, "stage") == 204:
                self.start_import(job, {"name": "glance-direct"})
        else:
            uri = f"http://127.0.0.1:{self.source_port}/blob/{job.seed}/{job.size}"
            self.start_import(job, {"name": "web-download", "uri": uri})

    def settled(self, job: Job) -> bool:
        """Whether the job's import is over (done or failed), as far as the API tells."""
        image = self.show(job, job.source_id or job.image_id, job.other)
        if job.kind == "copy-image":
            return "cheap" in image.get("stores", "") or not image.get(
                "os_glance_importing_to_stores"
            )
        return image["status"] in ("active", "queued") or (
            image["status"] == "uploading" and "os_glance_import_task" not in image
        )

    def done(self, job: Job) -> bool:
        image = self.show(job, job.source_id or job.image_id, job.other)
        if job.kind == "copy-image":
            return "cheap" in image.get("stores", "").split(",")
        return image["status"] == "active"

    def retry(self, job: Job) -> None:
        """One retry of what the image's state allows (docs/import.md, failure semantics)."""
        job.retries += 1
        try:
            if job.kind == "copy-image":
                self.start_import(job, {"name": "copy-image"}, ["cheap"])
                return
            if not job.image_id:
                job.image_id = self.create(job)
            status = self.show(job, job.image_id, job.node)["status"]
            if job.kind == "upload" and status == "queued":
                self.put_data(job, "file")
            elif job.kind == "glance-direct":
                if status == "queued":
                    status = "uploading" if self.put_data(job, "stage") == 204 else status
                if status == "uploading":
                    self.start_import(job, {"name": "glance-direct"})
            elif job.kind == "web-download" and status == "queued":
                uri = f"http://127.0.0.1:{self.source_port}/blob/{job.seed}/{job.size}"
                self.start_import(job, {"name": "web-download", "uri": uri})
            else:
                job.notes.append(f"retry: nothing to do for status {status}")
        except (Cut, AssertionError) as error:
            job.notes.append(f"retry: {error}")


class Source(BaseHTTPRequestHandler):
    """``/blob/<seed>/<size>``: the payload web-download fetches."""

    def do_GET(self):
        _, _, seed, size = self.path.split("/")
        data = payload(int(seed), int(size))
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


# --- the stores, looked at directly ----------------------------------------------------------


class Backends:
    def __init__(self, facts: dict[str, str]):
        self.swift = swiftclient.Connection(
            authurl=facts["SWIFT_AUTH_URL"], user=facts["SWIFT_USER"], key=facts["SWIFT_KEY"],
            auth_version=facts["SWIFT_AUTH_VERSION"], retries=2,
        )  # fmt: skip
        config = Config(
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self.s3 = boto3.client(
            "s3", endpoint_url=facts["S3_ENDPOINT"], region_name=facts["S3_REGION"],
            aws_access_key_id=facts["S3_ACCESS_KEY"], aws_secret_access_key=facts["S3_SECRET_KEY"],
            config=config,
        )  # fmt: skip

    def names(self, container: str) -> list[str]:
        try:
            return [e["name"] for e in self.swift.get_container(container, full_listing=True)[1]]
        except swiftclient.ClientException as error:
            if error.http_status == 404:
                return []
            raise

    def manifest_segments(self, container: str, name: str) -> set[str]:
        """The segments an SLO names (none for a plain object)."""
        if self.swift.head_object(container, name).get("x-static-large-object") != "True":
            return set()
        _, body = self.swift.get_object(container, name, query_string="multipart-manifest=get")
        return {entry["name"].lstrip("/") for entry in json.loads(body)}

    def reset(self) -> None:
        """Empty what an earlier run left in this test's Swift."""
        for container in CONTAINERS:
            for name in self.names(container):
                with contextlib.suppress(swiftclient.ClientException):
                    self.swift.delete_object(container, name)

    def orphans(self, images: dict[str, dict]) -> list[str]:
        """What no active image's location refers to, in every container and bucket."""
        found = []
        # objects: manifests of images stored there, and the segments those manifests name.
        referenced: set[str] = set()
        for name in self.names("cluster-images"):
            if len(name) == 36:
                image = images.get(name)
                if image is None or "objects" not in image.get("stores", "").split(","):
                    found.append(f"cluster-images/{name} (no such image in the store)")
                else:
                    referenced |= self.manifest_segments("cluster-images", name)
        for name in self.names("cluster-images"):
            if len(name) != 36 and f"cluster-images/{name}" not in referenced:
                found.append(f"cluster-images/{name}")
        found += [f"cluster-staging/{name}" for name in self.names("cluster-staging")]
        keys = [
            item["Key"]
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket="cluster-cheap")
            for item in page.get("Contents", [])
        ]
        referenced = set()
        for key in keys:
            image = images.get(key)
            if image is None or "cheap" not in image.get("stores", "").split(","):
                found.append(f"cluster-cheap/{key} (no such image in the store)")
            with contextlib.suppress(swiftclient.ClientException):
                referenced |= self.manifest_segments("cluster-cheap", key)
        uploads = self.s3.list_multipart_uploads(Bucket="cluster-cheap").get("Uploads", [])
        found += [f"cluster-cheap upload {u['Key']} {u['UploadId']}" for u in uploads]
        for name in self.names("cluster-cheap+segments"):
            if f"cluster-cheap+segments/{name}" not in referenced:
                found.append(f"cluster-cheap+segments/{name}")
        return found


# --- the run ---------------------------------------------------------------------------------


def swift_aio(*arguments: str) -> str:
    result = subprocess.run(
        [str(SWIFT_AIO), *arguments], env={**os.environ, **SWIFT_ENV}, capture_output=True,
        text=True, timeout=600, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(
            f"swift-aio.sh {' '.join(arguments)} failed:\n{result.stdout}{result.stderr}"
        )
    return result.stdout


def choose_ports() -> None:
    """Keep the Swift's ports when they are free (or its own, still running), else take free
    ones: other instances may run on this machine with ports of their choosing."""
    running = subprocess.run(
        [str(SWIFT_AIO), "status"], env={**os.environ, **SWIFT_ENV}, capture_output=True,
        timeout=60, stdin=subprocess.DEVNULL,
    ).returncode == 0  # fmt: skip
    if running:
        return
    for variable in [name for name in SWIFT_ENV if name.endswith("_PORT")]:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", int(SWIFT_ENV[variable])))
            except OSError:
                SWIFT_ENV[variable] = str(free_port())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def recreate_database(url: str) -> None:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    maintenance = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def manage(env: dict[str, str], *arguments: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *arguments], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=180, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(arguments)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def wait_until(condition, seconds: float, every: float = 1.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return condition()


def database_state(env: dict[str, str], image_ids: list[str]) -> dict:
    """Stuck images and unfinished tasks, straight from the database."""
    code = (
        "import json; from images.models import Image; from tasks.models import Task; "
        f"ids = {image_ids!r}; "
        "print(json.dumps({"
        "'stuck_images': [f'{i.id} {i.status}' for i in Image.objects.filter(pk__in=ids, "
        "status__in=['saving', 'importing'])], "
        "'unfinished_tasks': [f'{t.id} {t.status}' for t in Task.objects.filter("
        "status__in=['pending', 'processing'])]}))"
    )
    return json.loads(manage(env, "shell", "-v", "0", "-c", code).strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--break-recovery", action="store_true")
    parser.add_argument("--keep", action="store_true")
    options = parser.parse_args()
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="imageservice-cluster-"))
    database_url = os.environ.get(
        "CLUSTER_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/imageservice_cluster"
    )
    redis_url = os.environ.get("CLUSTER_REDIS_URL", "redis://127.0.0.1:6379/2")

    print(f"cluster test in {work}")
    recreate_database(database_url)
    choose_ports()
    swift_failure: list[BaseException] = []

    def start_swift() -> None:
        try:
            swift_aio("start")
        except BaseException as error:  # SystemExit too: a thread would drop it silently
            swift_failure.append(error)

    swift = threading.Thread(target=start_swift)
    swift.start()
    settings_dir = work / "settings"
    settings_dir.mkdir()
    # A queue of this run's own: a Redis shared with other runs never hands their jobs here.
    (settings_dir / "cluster_settings.py").write_text(
        "from imageservice.settings import *  # noqa: F403\n"
        "from imageservice.settings import Q_CLUSTER\n"
        f"Q_CLUSTER = {{**Q_CLUSTER, 'name': 'cluster-{uuid.uuid4().hex[:10]}'}}\n"
    )
    source = ThreadingHTTPServer(("127.0.0.1", free_port()), Source)
    threading.Thread(target=source.serve_forever, daemon=True).start()
    source_port = source.server_address[1]
    base_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OS_", "STAGING_STORE_"))},
        "DJANGO_SETTINGS_MODULE": "cluster_settings",
        "PYTHONPATH": str(settings_dir),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "GLANCE_API_CONF": str(work / "glance-api.conf"),
        "SECRET_KEY": "cluster-test-secret",
        "IMPORT_STALE_SECONDS": str(STALE_SECONDS),
        "UPLOAD_STALE_SECONDS": str(STALE_SECONDS),
        "IMPORT_ALLOWED_HOSTS": "127.0.0.1",
        "IMPORT_ALLOWED_PORTS": f"80,443,{source_port}",
        "WEB_CONCURRENCY": "2",
        "Q_WORKERS": "2",
        # 50 imports of one project at once: no per-project web-download limit (its own tests
        # cover it), and two of the four job processes may download at the same time.
        "WEB_DOWNLOAD_PROJECT_LIMIT": "0",
        "WEB_DOWNLOAD_WORKERS": "2",
        "SHUTDOWN_GRACE_SECONDS": "10",
        "DEMO_OPERATOR_TOKEN": OPERATOR_TOKEN,
        "DEMO_USER_TOKEN": USER_TOKEN,
        "DEMO_OTHER_TOKEN": "cluster-other-token",
    }

    def node_env(name: str) -> dict[str, str]:
        data_dir = work / name
        data_dir.mkdir(exist_ok=True)
        return {**base_env, "DATA_DIR": str(data_dir), "NODE_NAME": name, "HOME": str(data_dir)}

    admin_env = node_env("admin")
    # The schema and the demo accounts while Swift starts: neither needs the stores.
    setup_env = {k: v for k, v in admin_env.items() if k != "GLANCE_API_CONF"}
    manage(setup_env, "migrate", "--noinput", "-v", "0")
    manage(setup_env, "seed_demo")
    swift.join()
    if swift_failure:
        raise swift_failure[0]
    facts = dict(
        line.split("=", 1) for line in swift_aio("status", "env").splitlines() if "=" in line
    )
    (work / "glance-api.conf").write_text(CONF.format(**facts))
    backends = Backends(facts)
    backends.reset()
    print(f"database and Swift ready after {time.monotonic() - started:.0f} s")
    nodes = [
        Node("api1", "api", free_port(), node_env("api1"), work / "api1.log"),
        Node("api2", "api", free_port(), node_env("api2"), work / "api2.log"),
        Node("worker1", "worker", free_port(), node_env("worker1"), work / "worker1.log"),
        Node("worker2", "worker", free_port(), node_env("worker2"), work / "worker2.log"),
    ]
    api_nodes, workers = nodes[:2], nodes[2:]
    try:
        for node in nodes:
            node.start()
        for node in api_nodes:
            node.wait_serving()
        print(f"nodes up after {time.monotonic() - started:.0f} s")
        return run(options, started, api_nodes, workers, admin_env, backends, source_port, work)
    finally:
        source.shutdown()
        if not options.keep:
            for node in nodes:
                node.stop()
            swift_aio("stop")
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept: nodes, database, Swift; logs in {work}")


def run(options, started, api_nodes, workers, admin_env, backends, source_port, work) -> int:
    api = Api(api_nodes)
    load = Workload(api, source_port)
    jobs: list[Job] = []
    for kind, count in COUNTS.items():
        for _ in range(count):
            number = len(jobs)
            jobs.append(Job(kind, number, seed=1000 + number, size=SIZES[number % len(SIZES)]))
    # copy-image copies images that are active already: ten of the uploads, done first.
    sources = [job for job in jobs if job.kind == "upload"][: COUNTS["copy-image"]]
    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(load.run, sources))
    for job, copy in zip(sources, [j for j in jobs if j.kind == "copy-image"], strict=True):
        copy.source_id, copy.image_id, copy.seed, copy.size = (
            job.image_id,
            job.image_id,
            job.seed,
            job.size,
        )
    print(f"copy-image sources uploaded after {time.monotonic() - started:.0f} s")

    killed_at: list[float] = []
    imports = sum(count for kind, count in COUNTS.items() if kind != "upload")

    def chaos() -> None:
        wait_until(lambda: load.accepted >= imports // 3, 120, every=0.1)
        killed_at.append(time.monotonic())
        workers[0].kill()
        api_nodes[0].kill()
        print(f"kill -9 worker1 and api1 after {load.accepted} imports accepted")
        time.sleep(3)
        workers[0].start()
        api_nodes[0].start()
        api_nodes[0].wait_serving()
        print("worker1 and api1 restarted")

    killer = threading.Thread(target=chaos)
    killer.start()
    rest = [job for job in jobs if job not in sources]
    random.Random(7).shuffle(rest)
    with ThreadPoolExecutor(max_workers=len(rest)) as pool:
        list(pool.map(load.run, rest))
    killer.join()
    print(f"workload sent after {time.monotonic() - started:.0f} s")

    def all_settled() -> bool:
        return all(_quietly(load.settled, job) for job in jobs if job.image_id)

    # What the kill interrupted settles only once it is stale (a pending task: twice the
    # timeout); then the schedules' tick hands it back.
    stale_deadline = killed_at[0] + 2 * STALE_SECONDS + 5
    wait_until(all_settled, stale_deadline - time.monotonic(), every=2)
    wait_until(lambda: time.monotonic() > stale_deadline, 120)
    if not options.break_recovery:
        print(manage(admin_env, "recover_imports").strip().splitlines()[-1])
        manage(admin_env, "recover_uploads")
    with ThreadPoolExecutor(max_workers=16) as pool:
        done = pool.map(_done(load), jobs)
        retried = [job for job, finished in zip(jobs, done, strict=True) if not finished]
        list(pool.map(load.retry, retried))
    print(f"{len(retried)} job(s) retried once after {time.monotonic() - started:.0f} s")
    wait_until(lambda: all(_quietly(load.done, job) for job in retried), 90, every=2)

    # Checks.
    with ThreadPoolExecutor(max_workers=8) as pool:
        verdicts = list(pool.map(lambda job: _verify(load, api, job), jobs))
    images = {job.image_id: image for job, (image, _) in zip(jobs, verdicts, strict=True)}
    wrong = [problem for _, problem in verdicts if problem]
    lost = sum(job.size for job, (_, problem) in zip(jobs, verdicts, strict=True) if problem)
    state = database_state(admin_env, [job.image_id for job in jobs if job.image_id])
    manage(admin_env, "cleanup_staging")
    manage(admin_env, "cleanup_stores")
    for node in [*api_nodes, *workers]:
        for leftover in ("staging", "import-work"):
            directory = Path(node.env["DATA_DIR"]) / leftover
            if directory.is_dir() and any(directory.iterdir()):
                state.setdefault("local", []).append(str(directory))
    orphans = backends.orphans({i: image for i, image in images.items() if i})
    over_budget = time.monotonic() - started > BUDGET_SECONDS

    rows = [
        ("images active, size and sha512 right, read back via the other node",
         f"{len(jobs) - len(wrong)}/{len(jobs)}", not wrong),
        ("retried once (left retryable by the kill)", str(len(retried)),
         all(job.retries <= 1 for job in jobs)),
        ("stuck past the stale timeout (images saving/importing, tasks unfinished)",
         str(len(state["stuck_images"]) + len(state["unfinished_tasks"])),
         not state["stuck_images"] and not state["unfinished_tasks"]),
        ("lost bytes", str(lost), lost == 0),
        ("responses 5xx", str(len(STATS.server_errors)), not STATS.server_errors),
        ("connections cut by the kill / refused and sent elsewhere",
         f"{STATS.cut} / {STATS.refused}", True),
        ("orphaned objects, segments, uploads, staged data", str(len(orphans)), not orphans),
        ("files left in nodes' staging and work directories", str(len(state.get("local", []))),
         not state.get("local")),
        (f"run time (budget {BUDGET_SECONDS} s)", f"{time.monotonic() - started:.0f} s",
         not over_budget),
    ]  # fmt: skip
    print()
    print(f"{'check':<76} {'value':>10}  result")
    for name, value, passed in rows:
        print(f"{name:<76} {value:>10}  {'ok' if passed else 'FAIL'}")
    print(
        f"\n{sum(STATS.statuses.values())} requests {dict(sorted(STATS.statuses.items()))}; "
        f"{STATS.bytes_sent} bytes sent, {STATS.bytes_read_back} read back"
    )
    for line in [*wrong, *STATS.server_errors, *state["stuck_images"], *state["unfinished_tasks"],
                 *orphans, *state.get("local", [])][:40]:  # fmt: skip
        print(f"  {line}")
    return 0 if all(passed for _, _, passed in rows) else 1


def _quietly(check, job):
    try:
        return check(job)
    except (Cut, AssertionError):
        return None


def _done(load: Workload):
    return lambda job: _quietly(load.done, job)


def _verify(load: Workload, api: Api, job: Job) -> tuple[dict, str]:
    """The image as the other node shows it, and what is wrong with it (empty: nothing)."""
    image = _quietly(lambda j: load.show(j, j.image_id, j.other), job) or {}
    data = job.data
    expected = hashlib.sha512(data).hexdigest()
    if job.kind == "copy-image":
        ok = "cheap" in image.get("stores", "").split(",")
    else:
        ok = image.get("status") == "active"
    ok = ok and image.get("size") == len(data) and image.get("os_hash_value") == expected
    read_back = _read_back(api, job) if ok else b""
    if hashlib.sha512(read_back).hexdigest() != expected:
        return image, f"{job.kind} {job.number} {job.image_id}: {image.get('status')} {job.notes}"
    with STATS.lock:
        STATS.bytes_read_back += len(read_back)
    return image, ""


def _read_back(api: Api, job: Job) -> bytes:
    try:
        status, data = api.call(job.other, "GET", f"/v2/images/{job.image_id}/file")
    except Cut:
        return b""
    return data if status == 200 else b""


if __name__ == "__main__":
    sys.exit(main())
