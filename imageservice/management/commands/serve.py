from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from images.storage import staging
from imageservice.metrics.multiprocess import server_environment
from tasks import nodes
from tasks.checks import check_shared_staging
from tasks.schedules import ensure_schedules

ROLES = ("all", "api", "worker")


class Command(BaseCommand):
    help = (
        "Run this node until stopped: the API (gunicorn) with --role api, the job worker "
        "(a django-q2 cluster) with --role worker, both with --role all (the default). "
        "SIGTERM stops it within SHUTDOWN_GRACE_SECONDS."
    )

    def add_arguments(self, parser):
        parser.add_argument("--role", choices=ROLES, default=os.environ.get("SERVE_ROLE", "all"))
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", default=os.environ.get("PORT", "8000"))
        parser.add_argument(
            "--workers", default=os.environ.get("WEB_CONCURRENCY", "4"), help="gunicorn workers"
        )
        parser.add_argument(
            "--threads",
            default=os.environ.get("WEB_THREADS", "2"),
            help="threads per gunicorn worker: requests served at once, slow uploads included",
        )

    def handle(self, *args, role: str, host: str, port: str, workers: str, threads: str, **options):
        # The node's name reaches the gunicorn and job processes through their environment.
        if "NODE_NAME" not in os.environ:
            os.environ["NODE_NAME"] = f"{socket.gethostname()}:{port}"
        settings.NODE_NAME = os.environ["NODE_NAME"]
        grace = max(settings.SHUTDOWN_GRACE_SECONDS, 4)
        # From here on a stop signal is only noted: children started meanwhile still get it.
        received: list[int] = []
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda signum, frame: received.append(signum))
        for warning in check_shared_staging(databases=["default"]):
            self.stderr.write(f"{warning.id}: {warning.msg}\n\tHINT: {warning.hint}")
        if role != "worker":
            # Uploads cut off by a previous stop; the schedule repeats this for other nodes.
            call_command("recover_uploads", stdout=self.stdout)
        if role != "api":
            staging.clear_local_work()
        ensure_schedules()
        # One metrics directory shared by the gunicorn workers and the job worker.
        env = server_environment(host, port)
        children = []
        if role != "worker":
            api = gunicorn_command(host, port, workers, threads, grace)
            children.append(subprocess.Popen(api, env=env))
        if role != "api":
            children.append(subprocess.Popen([sys.executable, "manage.py", "jobworker"], env=env))
        what = {"all": "the API and a job worker", "api": "the API", "worker": "a job worker"}
        where = f" on http://{host}:{port}/" if role != "worker" else ""
        self.stdout.write(f"Node {settings.NODE_NAME} runs {what[role]}{where}")
        supervise(children, role, received)
        stop(children, grace)
        nodes.unregister()
        if not received:
            sys.exit(1)  # a child died: a half-running node is worse than none


def gunicorn_command(host: str, port: str, workers: str, threads: str, grace: int) -> list[str]:
    command = [
        sys.executable, "-m", "gunicorn", "imageservice.wsgi:application",
        "--bind", f"{host}:{port}", "--workers", workers,
        "--worker-class", "imageservice.gunicorn_worker.ImageServiceWorker",
        "--threads", threads, "--keep-alive", "5", "--timeout", "300",
        # Within the node's grace, leaving this process time to see it exit and to exit.
        "--graceful-timeout", str(grace - 3),
        # Every gunicorn on a machine would share ~/.gunicorn/gunicorn.ctl; nothing uses it.
        "--no-control-socket",
    ]  # fmt: skip
    # gthread workers keep client connections alive: a new TCP connection per request cost
    # more CPU than a whole image-list page (docs/benchmarks.md).
    if os.environ.get("ACCESS_LOG", "").lower() in {"1", "true", "yes", "on"}:
        command += ["--access-logfile", "-"]
    return command


def supervise(children: list[subprocess.Popen], role: str, received: list[int]) -> None:
    """Beat the node's registry row until a stop signal is ``received`` or a child dies."""
    next_beat = 0.0
    while not received and all(child.poll() is None for child in children):
        if time.monotonic() >= next_beat:
            nodes.beat(role)
            next_beat = time.monotonic() + settings.NODE_HEARTBEAT_SECONDS
        time.sleep(0.2)


def stop(children: list[subprocess.Popen], grace: int) -> None:
    """SIGTERM each child (again, when the whole group got it: both take it twice), then wait
    for them within the grace period (less two seconds for this process to exit); SIGKILL what
    is left."""
    deadline = time.monotonic() + grace - 2
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout=max(deadline - time.monotonic(), 0))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
