"""The per-server directory of prometheus_client's multiprocess mode."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

from django.conf import settings


def server_environment(host: str, port: str) -> dict[str, str]:
    """The environment for a server's gunicorn and job worker: one metrics directory under
    ``DATA_DIR/metrics`` per address, emptied now (counts of a previous run would otherwise be
    added to this one's), unless the operator named one in ``PROMETHEUS_MULTIPROC_DIR``; and
    the node name its audit events carry."""
    configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    directory = Path(configured or settings.DATA_DIR / "metrics" / f"{host}-{port}")
    if configured:
        # Only the files prometheus_client writes: an operator's directory may hold more.
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
    else:
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
    return {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(directory),
        "NODE_NAME": os.environ.get("NODE_NAME") or f"{socket.gethostname()}:{port}",
    }
