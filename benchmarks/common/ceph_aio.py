"""A real one-node Ceph (`scripts/ceph-aio.sh`) for one benchmark run.

The benchmark's cluster has its own state dir and monitor ports, so it never disturbs the one
tests use. `bench_ceph()` starts it unless it already runs, and stops it (purging its state)
on leaving, on failure and on Ctrl-C or SIGTERM (see `common.server.run_benchmark`), but only
if it started it. `CephAIO` gives its daemons' CPU time and a librados connection to it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import rados

from common.aio import running
from common.procfs import cpu_seconds
from common.server import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "scripts" / "ceph-aio.sh"
SCRIPT_TIMEOUT = 600.0  # a first start installs Debian's packages
OPERATION_TIMEOUT = "60"
DAEMONS = ("mon", "mgr", "osd")


@dataclass(frozen=True)
class CephAIO:
    """The running cluster: `status env` facts (CEPH_CONF, CEPH_USER, CEPH_POOL) and daemons."""

    env: dict[str, str]
    state_dir: Path
    started_here: bool
    start_seconds: float

    def pids(self) -> list[int]:
        pids = []
        for name in DAEMONS:
            with contextlib.suppress(OSError, ValueError):
                pids.append(int((self.state_dir / "run" / f"{name}.pid").read_text()))
        return pids

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids())

    def connect(self) -> rados.Rados:
        cluster = rados.Rados(conffile=self.env["CEPH_CONF"], rados_id=self.env["CEPH_USER"])
        for option in ("rados_osd_op_timeout", "rados_mon_op_timeout", "client_mount_timeout"):
            cluster.conf_set(option, OPERATION_TIMEOUT)
        cluster.connect()
        return cluster


def default_state_dir() -> Path:
    return Path(tempfile.gettempdir()) / "imageservice-bench-ceph"


@contextlib.contextmanager
def bench_ceph(settings: Mapping[str, str]) -> Iterator[CephAIO]:
    """The cluster ``settings`` (``CEPH_AIO_*``) describe, running while the block runs."""
    env = {**os.environ, **settings}
    state_dir = Path(env.get("CEPH_AIO_DIR") or default_state_dir())
    env["CEPH_AIO_DIR"] = str(state_dir)
    with running(SCRIPT, env, SCRIPT_TIMEOUT) as instance:
        yield CephAIO(instance.facts, state_dir, instance.started_here, instance.start_seconds)
