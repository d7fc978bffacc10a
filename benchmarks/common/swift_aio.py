"""A real Swift with its S3 API on loopback (`scripts/swift-aio.sh`) for one benchmark run.

The benchmark's instance has its own state dir and ports, so it never disturbs one that tests
use. `bench_swift()` starts it unless it already runs, and stops it (purging its state) on
leaving, on failure and on Ctrl-C or SIGTERM (see `common.server.run_benchmark`), but only if
it started it. `SwiftAIO` gives a swiftclient connection to it, its servers' CPU time, and
what a run left in its containers.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import swiftclient

from common.aio import running
from common.procfs import child_pids, cpu_seconds
from common.server import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "scripts" / "swift-aio.sh"
SCRIPT_TIMEOUT = 180.0  # a first start installs Debian's packages
REQUEST_TIMEOUT = 60.0


@dataclass(frozen=True)
class SwiftAIO:
    """The running instance: `status env` facts (endpoints, credentials) and its processes."""

    env: dict[str, str]
    state_dir: Path
    started_here: bool
    start_seconds: float

    def pids(self) -> list[int]:
        """Every server (memcached, account, container, object, proxy) and the proxy's workers."""
        leaders = []
        for pid_file in (self.state_dir / "run").glob("*.pid"):
            with contextlib.suppress(OSError, ValueError):
                leaders.append(int(pid_file.read_text()))
        return [*leaders, *(child for pid in leaders for child in child_pids(pid))]

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids())

    def connection(self) -> swiftclient.Connection:
        return swiftclient.Connection(
            authurl=self.env["SWIFT_AUTH_URL"],
            user=self.env["SWIFT_USER"],
            key=self.env["SWIFT_KEY"],
            auth_version=self.env["SWIFT_AUTH_VERSION"],
            timeout=REQUEST_TIMEOUT,
        )

    def objects(self, containers: list[str]) -> list[str]:
        """``container/name`` of everything in these containers (an S3 bucket is one, and its
        multipart parts are in ``<bucket>+segments``)."""
        connection = self.connection()
        found = []
        for container in containers:
            with contextlib.suppress(swiftclient.ClientException):  # 404: no such container
                _, listing = connection.get_container(container, full_listing=True)
                found += [f"{container}/{entry['name']}" for entry in listing]
        return found

    def remove(self, containers: list[str]) -> None:
        """These containers and everything in them."""
        connection = self.connection()
        for name in self.objects(containers):
            container, _, key = name.partition("/")
            with contextlib.suppress(swiftclient.ClientException):
                connection.delete_object(container, key)
        for container in containers:
            with contextlib.suppress(swiftclient.ClientException):
                connection.delete_container(container)


def default_state_dir() -> Path:
    return Path(tempfile.gettempdir()) / "imageservice-bench-swift"


@contextlib.contextmanager
def bench_swift(settings: Mapping[str, str]) -> Iterator[SwiftAIO]:
    """The instance ``settings`` (``SWIFT_AIO_*``) describe, running while the block runs."""
    env = {**os.environ, **settings}
    state_dir = Path(env.get("SWIFT_AIO_DIR") or default_state_dir())
    env["SWIFT_AIO_DIR"] = str(state_dir)
    with running(SCRIPT, env, SCRIPT_TIMEOUT) as instance:
        yield SwiftAIO(instance.facts, state_dir, instance.started_here, instance.start_seconds)
