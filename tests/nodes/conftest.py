"""Nodes as operators run them: ``manage.py serve --role …``, each in a process group of its own
(as systemd's control group), sharing one database, job queue and DATA_DIR.

The session migrates one database (a SQLite file, or on PostgreSQL a database of its own named
after the one in ``DATABASE_URL``) and seeds the demo accounts; each test starts the nodes it
needs with ``start_node`` and they are stopped (their whole group killed if need be) after it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.live.conftest import (
    DEMO_PASSWORDS,
    DEMO_TOKENS,
    PROJECT_ROOT,
    free_port,
    recreate_postgres_database,
    run_checked,
    write_live_settings,
)

START_TIMEOUT = 60


@dataclass
class Cluster:
    """What every node of a test shares: environment (database, queue, DATA_DIR) and accounts."""

    env: dict[str, str] = field(repr=False)
    data_dir: Path
    root: Path
    token: str  # the demo "user" account's token

    def manage(self, *args: str, **settings: str) -> str:
        return run_checked([sys.executable, "manage.py", *args], {**self.env, **settings})

    def shell(self, code: str) -> str:
        """Run Python in ``manage.py shell`` on the cluster's database; return its stdout."""
        return self.manage("shell", "-v", "0", "-c", code)

    def query(self, expression: str) -> object:
        """The JSON value of one Python expression evaluated in ``manage.py shell``."""
        code = f"import json\nprint(json.dumps({expression}, default=str))"
        return json.loads(self.shell(code).strip().splitlines()[-1])


@dataclass
class ServeNode:
    role: str
    name: str
    port: int
    process: subprocess.Popen
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def group(self) -> list[int]:
        """Every process still in the node's process group (zombies aside)."""
        return processes_in_group(self.process.pid)

    def signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def processes_in_group(pgid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        state, group = fields[0], int(fields[2])
        if group == pgid and state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def request(url: str, *, method: str = "GET", token: str = "", body=None, headers=None, timeout=10):
    """(status, headers, body bytes) of one HTTP request; HTTP errors are answers too."""
    all_headers = {**({"X-Auth-Token": token} if token else {}), **(headers or {})}
    data = json.dumps(body).encode() if isinstance(body, dict | list) else body
    if isinstance(body, dict | list):
        all_headers.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def create_image(node: ServeNode, token: str, **fields) -> str:
    body = {"disk_format": "raw", "container_format": "bare", **fields}
    status, _, answer = request(f"{node.url}/v2/images", method="POST", token=token, body=body)
    assert status == 201, answer
    return json.loads(answer)["id"]


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture(scope="session")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("nodes")
    data_dir = root / "data"
    home = root / "home"
    home.mkdir()
    settings_dir = root / "settings"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PUBLIC_ENDPOINT", "NODE_NAME") and not key.startswith("OS_")
    }
    env.update(
        DATA_DIR=str(data_dir),
        HOME=str(home),
        DJANGO_SETTINGS_MODULE=write_live_settings(settings_dir),
        PYTHONPATH=os.pathsep.join(filter(None, [str(settings_dir), env.get("PYTHONPATH")])),
        LOG_LEVEL="INFO",
        IMPORT_ALLOWED_HOSTS="127.0.0.1",
        # Three job processes: two web-download slots (the crash test runs two downloads at
        # once) and one left for the other imports.
        Q_WORKERS="3",
    )
    for variable, value in [*DEMO_TOKENS.values(), *DEMO_PASSWORDS.values()]:
        env[variable] = value
    database_url = os.environ.get("DATABASE_URL", "")
    uses_postgres = database_url.startswith(("postgres://", "postgresql://"))
    database_name = ""
    if uses_postgres:
        base = urlsplit(database_url).path.lstrip("/") or "imageservice"
        database_name = f"{base}_nodes_{uuid.uuid4().hex[:8]}"
        env["DATABASE_URL"] = recreate_postgres_database(database_url, database_name)
    else:
        env["DATABASE_URL"] = f"sqlite:///{data_dir / 'nodes.sqlite3'}"
        data_dir.mkdir()
    try:
        run_checked([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], env)
        run_checked([sys.executable, "manage.py", "seed_demo"], env)
        yield Cluster(env=env, data_dir=data_dir, root=root, token=env["DEMO_USER_TOKEN"])
    finally:
        if uses_postgres:
            recreate_postgres_database(database_url, database_name, drop_only=True)


@pytest.fixture
def start_node(cluster, tmp_path) -> Iterator[Callable[..., ServeNode]]:
    """``start_node("api", SHUTDOWN_GRACE_SECONDS="5")``: a ``serve --role`` node, ready."""
    started: list[ServeNode] = []

    def start(
        role: str = "all", *, port: int | None = None, threads: int = 2, **settings: str
    ) -> ServeNode:
        port = port or free_port()
        name = settings.pop("NODE_NAME", f"node-{role}-{port}")
        log = tmp_path / f"{name}.log"
        env = {**cluster.env, "NODE_NAME": name, **settings}
        command = [sys.executable, "manage.py", "serve", "--role", role]
        command += ["--port", str(port), "--workers", "2", "--threads", str(threads)]
        with log.open("ab") as output:
            process = subprocess.Popen(
                command,
                cwd=PROJECT_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        node = ServeNode(role, name, port, process, log)
        started.append(node)
        wait_until_ready(node)
        return node

    try:
        yield start
    finally:
        for node in started:
            stop_node(node)


def wait_until_ready(node: ServeNode) -> None:
    def ready() -> bool:
        if node.process.poll() is not None:
            raise AssertionError(f"serve exited {node.process.returncode}:\n{node.log_text()}")
        if node.role != "api" and "running." not in node.log_text():
            return False  # django-q2 logs "Q Cluster … running." once its workers are up
        if node.role == "worker":
            return True
        try:
            return request(f"{node.url}/versions", timeout=2)[0] == 200
        except OSError:
            return False

    try:
        wait_for(ready, START_TIMEOUT, f"{node.name} to start")
    except AssertionError as error:
        raise AssertionError(f"{error}\n{node.log_text()}") from None


def stop_node(node: ServeNode) -> None:
    if node.process.poll() is None:
        node.signal_group(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            node.process.wait(timeout=30)
    node.signal_group(signal.SIGKILL)  # whatever of the group is left
    node.process.wait()
