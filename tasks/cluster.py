"""The job worker: a django-q2 cluster that stops within the grace period.

django-q2's own ``qcluster`` cannot be stopped by a SIGTERM sent to its whole process group
(systemd's default): the sentinel dies at once, leaving the parent waiting forever on state the
dead sentinel held, and each job process dies in the middle of its job. Here:

- the parent adopts every process of the cluster (a Linux child subreaper), so it can tell them
  all to stop and wait for them even after the sentinel is gone, and SIGKILLs what is left when
  the grace period ends;
- each job process (``install_stop_handler``, connected to django-q2's ``post_spawn``) exits when
  told to stop: at once when idle; when running an import, the import is interrupted with
  ``WorkerStopping`` and handed back (task failed as retryable, image back where the user can
  retry it, as ``tasks.runner`` does for any failure) before the process exits.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger(__name__)
PR_SET_CHILD_SUBREAPER = 36


class WorkerStopping(BaseException):
    """Raised inside a running job when its process is told to stop. Not an ``Exception``:
    the handlers that turn a failed read into a message must not swallow it, only the
    cleanups (``except BaseException: … raise``) and ``tasks.runner.run_import`` see it."""


STOPPED_MESSAGE = "The job worker running this import was stopped; the import can be retried."

_job_running = False
_stop_requested = False


def install_stop_handler(**signal_kwargs) -> None:
    """In a django-q2 job process: exit on SIGTERM, handing a running import back first."""
    # post_spawn also fires for a job run inline (sync), in a request's thread of a gunicorn
    # worker or a test: only a job process the cluster started takes the handler.
    if multiprocessing.parent_process() is None:
        return
    signal.signal(signal.SIGTERM, _on_stop)


def _on_stop(signum, frame) -> None:
    global _stop_requested
    if _stop_requested:
        return  # the running job is handing back already
    _stop_requested = True
    if _job_running:
        raise WorkerStopping(STOPPED_MESSAGE)
    raise SystemExit(0)


@contextlib.contextmanager
def job() -> Iterator[None]:
    """Around a job's work: a stop interrupts it; the process exits once it is handed back."""
    global _job_running
    if _stop_requested:
        raise SystemExit(0)
    _job_running = True
    try:
        yield
    finally:
        _job_running = False
    if _stop_requested:
        # Out of django-q2's worker loop: its pusher is gone, no job will come any more.
        raise SystemExit(0)


def run_cluster(grace: float) -> int:
    """Run the cluster until SIGTERM or SIGINT, then stop it within ``grace`` seconds."""
    from django_q.cluster import Cluster  # noqa: PLC0415 (needs the apps loaded)

    _become_subreaper()
    stop_requested = []
    cluster = Cluster()  # installs django-q2's own handlers, which would hang: replaced below
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda signum, frame: stop_requested.append(signum))
    try:
        cluster.start()
    except RuntimeError:
        # The sentinel died while starting: killed by the stop signal itself, or broken.
        if not stop_requested:
            raise
    while not stop_requested and cluster.sentinel.is_alive():
        time.sleep(0.2)
    died = not stop_requested
    if died:
        logger.error("The job cluster's sentinel died; stopping the job worker.")
    stop_processes(grace)
    return 1 if died else 0


def stop_processes(grace: float) -> None:
    """SIGTERM every descendant, wait up to ``grace`` seconds, SIGKILL the rest."""
    deadline = time.monotonic() + grace
    told: set[int] = set()
    while True:
        _reap()
        alive = descendants(os.getpid())
        if not alive:
            return
        for pid in set(alive) - told:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            told.add(pid)
        if time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    for pid in descendants(os.getpid()):
        logger.warning("Job worker process %s did not stop in %s s: killed", pid, grace)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    time.sleep(0.1)
    _reap()


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux /proc), zombies excluded."""
    found: list[int] = []
    pending = [pid]
    while pending:
        parent = pending.pop()
        path = Path(f"/proc/{parent}/task/{parent}/children")
        try:
            children = [int(child) for child in path.read_text().split()]
        except (OSError, ValueError):
            continue
        for child in children:
            if not _is_zombie(child):
                found.append(child)
            pending.append(child)
    return found


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X")


def _reap() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


def _become_subreaper() -> None:
    # Orphans of the sentinel are then re-parented to us, not to init, and stay ours to stop.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
