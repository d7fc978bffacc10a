"""A real server for the client tests: gunicorn on loopback, as ``make run`` serves it.

The server gets its own database, never pytest-django's: a fresh SQLite file under a temporary
DATA_DIR, or, when ``DATABASE_URL`` points at PostgreSQL, a database called ``<db>_live`` on that
server (``<db>`` the one ``DATABASE_URL`` names; ``<db>_live_gw0`` under pytest-xdist), created
at session start and dropped at the end. The demo accounts come from ``manage.py seed_demo``
with fixed tokens and passwords, and its clouds.yaml (``LiveService.clouds_file``) logs them in
through the embedded Keystone:

operator  project "admin", roles admin, member, reader
user      project "demo", roles member, reader: owns the images the tests create
other     project "other", roles member, reader: the project images are shared with

For the import tests the server lets web-download fetch from 127.0.0.1 on one reserved port
(``LiveService.import_source_port``), and ``live_worker`` runs ``manage.py qcluster`` beside it
with the same environment. Every subprocess loads a generated settings module that gives the job
queue a cluster name of its own, so sessions sharing a Redis server never take each other's jobs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def live_database_name(database_url: str) -> str:
    """``<db>_live`` beside the database of ``DATABASE_URL``, as Django's ``test_<db>``: runs
    against different databases of one server never drop each other's live database. Under
    pytest-xdist each worker has its own (``<db>_live_gw0``), as pytest-django's test database."""
    name = urlsplit(database_url).path.lstrip("/") or "imageservice"
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    return f"{name}_live_{worker}" if worker else f"{name}_live"


DEMO_TOKENS = {
    "operator": ("DEMO_OPERATOR_TOKEN", "live-operator-token"),
    "user": ("DEMO_USER_TOKEN", "live-user-token"),
    "other": ("DEMO_OTHER_TOKEN", "live-other-token"),
}
DEMO_PASSWORDS = {
    "operator": ("DEMO_OPERATOR_PASSWORD", "live-operator-password"),
    "user": ("DEMO_USER_PASSWORD", "live-user-password"),
    "other": ("DEMO_OTHER_PASSWORD", "live-other-password"),
}
# seed_demo prints "user      project demo (<id>) roles member,reader [created]".
SEED_LINE = re.compile(r"^(?P<username>\w+)\s+project \S+ \((?P<project_id>\w+)\)", re.MULTILINE)
ACCESS_LOG_REQUEST = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3})')
START_TIMEOUT = 30
# PBKDF2's real cost (half a CPU-second per password set or checked) adds minutes to the suite:
# the servers started here and the tests in process (tests/conftest.py) use a fast hasher.
FAST_PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclass(frozen=True)
class LiveAccount:
    username: str
    token: str
    project_id: str
    password: str = field(default="", repr=False)


@dataclass
class LiveService:
    url: str
    operator: LiveAccount
    user: LiveAccount
    other: LiveAccount
    env: dict[str, str] = field(repr=False)
    access_log: Path = field(repr=False)
    data_dir: Path = field(repr=False)
    # The port on 127.0.0.1 that web-download may fetch from (IMPORT_ALLOWED_HOSTS/_PORTS).
    import_source_port: int = 0

    @property
    def store_dir(self) -> Path:
        """Where the single filesystem store keeps image data: DATA_DIR/images."""
        return self.data_dir / "images"

    @property
    def clouds_file(self) -> Path:
        """The clouds.yaml seed_demo wrote: imageservice-demo, -other and -admin clouds."""
        return self.data_dir / "clouds.yaml"

    @property
    def staging_dir(self) -> Path:
        """The staging area (NODE_STAGING_URI's default): DATA_DIR/staging."""
        return self.data_dir / "staging"

    def manage(self, *args: str) -> str:
        """Run a management command against the live server's database; return its stdout."""
        return run_checked([sys.executable, "manage.py", *args], self.env)

    def set_status(self, image_id: str, status: str) -> None:
        """Put an image into ``status`` directly in the database, without uploading data."""
        code = (
            "from images.models import Image; "
            f"assert Image.objects.filter(pk={image_id!r}).update(status={status!r}) == 1"
        )
        self.manage("shell", "-v", "0", "-c", code)

    def access_log_mark(self) -> int:
        return self.access_log.stat().st_size

    def requests_since(
        self, mark: int, *, path_prefix: str = "", at_least: int = 0
    ) -> list[tuple[str, str, int]]:
        """(method, path with query, status) of each request under ``path_prefix`` that the
        server logged after ``mark``.

        A worker writes its access line just after sending the response, so the client can be
        a step ahead of the log: wait (briefly) for ``at_least`` such lines."""
        deadline = time.monotonic() + 5
        while True:
            with self.access_log.open("rb") as log:
                log.seek(mark)
                text = log.read().decode()
            requests = [
                (match["method"], match["path"], int(match["status"]))
                for match in ACCESS_LOG_REQUEST.finditer(text)
                if match["path"].startswith(path_prefix)
            ]
            if len(requests) >= at_least or time.monotonic() > deadline:
                return requests
            time.sleep(0.05)


@pytest.fixture
def unique() -> str:
    """A suffix for names and tags that no other test (or earlier run) uses."""
    return uuid.uuid4().hex[:10]


def run_checked(command: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(
        command,
        cwd=PROJECT_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def recreate_postgres_database(database_url: str, name: str, *, drop_only: bool = False) -> str:
    """Drop (and unless ``drop_only``, create) database ``name`` on the server of
    ``database_url``; return the URL of that database."""
    parts = urlsplit(database_url)
    # Connect to the maintenance database: the one named in DATABASE_URL may not exist.
    maintenance_url = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(maintenance_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            connection.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}"))


def wait_until_serving(url: str, server: subprocess.Popen, server_log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(
                f"gunicorn exited with {server.returncode}:\n{server_log.read_text()}"
            )
        try:
            with urllib.request.urlopen(f"{url}/versions", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise RuntimeError(
        f"gunicorn did not answer /versions in {START_TIMEOUT}s:\n{server_log.read_text()}"
    )


def stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def write_live_settings(directory: Path) -> str:
    """A settings module (returned as its name) that is ``imageservice.settings`` with a job
    queue cluster name unique to this session (django-q2 names the Redis list after it) and the
    suite's fast password hasher."""
    directory.mkdir()
    name = f"imageservice-live-{uuid.uuid4().hex[:12]}"
    (directory / "imageservice_live_settings.py").write_text(
        "from imageservice.settings import *  # noqa: F403\n"
        "from imageservice.settings import Q_CLUSTER\n"
        f"Q_CLUSTER = {{**Q_CLUSTER, 'name': {name!r}}}\n"
        f"PASSWORD_HASHERS = {FAST_PASSWORD_HASHERS!r}\n"
    )
    return "imageservice_live_settings"


def start_gunicorn(port: int, env: dict[str, str], access_log: Path, server_log: Path):
    gunicorn = [
        sys.executable, "-m", "gunicorn", "imageservice.wsgi:application",
        "--bind", f"127.0.0.1:{port}", "--workers", "2",
        "--access-logfile", str(access_log), "--graceful-timeout", "5",
    ]  # fmt: skip
    # The child keeps its own copy of the log's descriptor once started.
    with server_log.open("wb") as output:
        return subprocess.Popen(
            gunicorn,
            cwd=PROJECT_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


@pytest.fixture(scope="session")
def live_service(tmp_path_factory) -> Iterator[LiveService]:
    root = tmp_path_factory.mktemp("live")
    home = root / "home"
    home.mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        # The versions document must point at this server, not a configured public endpoint,
        # and the glance CLI must not pick up a developer's OS_* cloud settings.
        if key != "PUBLIC_ENDPOINT" and not key.startswith("OS_")
    }
    settings_dir = root / "settings"
    import_source_port = free_port()
    env.update(
        DATA_DIR=str(root / "data"),
        # The glance CLI caches the schemas it downloads under ~/.glanceclient.
        HOME=str(home),
        DJANGO_SETTINGS_MODULE=write_live_settings(settings_dir),
        PYTHONPATH=os.pathsep.join(filter(None, [str(settings_dir), env.get("PYTHONPATH")])),
        # web-download refuses loopback and ports other than 80/443 unless the operator allows.
        IMPORT_ALLOWED_HOSTS="127.0.0.1",
        IMPORT_ALLOWED_PORTS=f"80,443,{import_source_port}",
    )
    for variable, value in [*DEMO_TOKENS.values(), *DEMO_PASSWORDS.values()]:
        env[variable] = value

    database_url = os.environ.get("DATABASE_URL", "")
    uses_postgres = database_url.startswith(("postgres://", "postgresql://"))
    if uses_postgres:
        live_database = live_database_name(database_url)
        env["DATABASE_URL"] = recreate_postgres_database(database_url, live_database)
    else:
        env.pop("DATABASE_URL", None)

    port = free_port()
    while port == import_source_port:
        port = free_port()
    url = f"http://127.0.0.1:{port}"
    access_log = root / "access.log"
    access_log.touch()
    # gunicorn's own messages and Django's request warnings, shown if start-up fails.
    server_log = root / "server.log"
    server = None
    try:
        run_checked([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], env)
        seed_output = run_checked(
            [sys.executable, "manage.py", "seed_demo", "--endpoint", url], env
        )
        project_ids = {m["username"]: m["project_id"] for m in SEED_LINE.finditer(seed_output)}
        accounts = {
            username: LiveAccount(
                username,
                env[variable],
                project_ids[username],
                password=env[DEMO_PASSWORDS[username][0]],
            )
            for username, (variable, _) in DEMO_TOKENS.items()
        }
        server = start_gunicorn(port, env, access_log, server_log)
        wait_until_serving(url, server, server_log)
        yield LiveService(
            url=url,
            env=env,
            access_log=access_log,
            data_dir=root / "data",
            import_source_port=import_source_port,
            **accounts,
        )
    finally:
        if server is not None:
            stop(server)
        if uses_postgres:
            recreate_postgres_database(database_url, live_database, drop_only=True)


@pytest.fixture(scope="session")
def extra_live_service(live_service, tmp_path_factory) -> Iterator[Callable[..., LiveService]]:
    """Start another gunicorn on the live server's database and DATA_DIR with some settings
    overridden (``extra_live_service(IMAGE_SIZE_CAP="1048576")``); stopped at session end."""
    servers: list[subprocess.Popen] = []

    def start(**settings: str) -> LiveService:
        root = tmp_path_factory.mktemp("live-extra")
        home = root / "home"
        home.mkdir()
        # Its own HOME: gunicorn keeps its control socket under ~/.gunicorn.
        env = {**live_service.env, "HOME": str(home), **settings}
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        access_log = root / "access.log"
        access_log.touch()
        server_log = root / "server.log"
        server = start_gunicorn(port, env, access_log, server_log)
        servers.append(server)
        wait_until_serving(url, server, server_log)
        return dataclasses.replace(live_service, url=url, env=env, access_log=access_log)

    try:
        yield start
    finally:
        for server in servers:
            stop(server)


class LiveWorker:
    """``manage.py qcluster`` in a process group of its own, with the live server's environment;
    its log (django-q's messages, job tracebacks) goes to ``log``."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "qcluster"],
                cwd=PROJECT_ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                # Its own group, so kill() reaches the sentinel and every worker process at once.
                start_new_session=True,
            )

    def kill(self) -> None:
        """SIGKILL the whole cluster, as an OOM killer or a pulled plug would."""
        assert self.process is not None and self.process.poll() is None, "not running"
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # whatever of the group is left
        self.process.wait()


@pytest.fixture(scope="session")
def live_worker(live_service, tmp_path_factory) -> Iterator[LiveWorker]:
    """The job worker that runs accepted imports for the live server; stopped at session end."""
    worker = LiveWorker(live_service.env, tmp_path_factory.mktemp("live-worker") / "qcluster.log")
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()
