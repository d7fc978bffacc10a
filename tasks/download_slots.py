"""How many web-downloads may run at once: per project, and across the job workers.

A web-download holds a job worker for as long as its source takes to send the image. Two limits
keep slow sources from starving everyone else:

* ``WEB_DOWNLOAD_PROJECT_LIMIT``: a project's unfinished web-downloads (running or waiting);
  one more is refused at ``POST /import`` with 413, as Glance refuses an import over its
  ``image_count_uploading`` quota;
* ``WEB_DOWNLOAD_WORKERS``: web-downloads running at once on all job workers together, below
  the number of workers, so glance-direct and copy-image jobs always find one free. A download
  job finding no slot puts its task back to ``pending`` with :data:`WAITING` and ends, freeing
  its worker; the next download to finish (or ``recover_imports``) enqueues it again.

Both counts are taken and acted on under one lock (:func:`serialised`), so concurrent requests
or jobs cannot each see room for one more.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Iterator

from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django_q.tasks import async_task

from imageservice.errors import GlanceError
from tasks.models import Task, TaskStatus

WAITING = "Waiting for a free web-download slot."
# PostgreSQL advisory lock key for the slot decisions (any constant unique to this use).
LOCK_KEY = zlib.crc32(b"imageservice web-download slots")


@contextlib.contextmanager
def serialised() -> Iterator[None]:
    """A transaction in which no other process takes a slot decision."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
        # SQLite: the transaction is IMMEDIATE (settings.py), so it already holds the write lock.
        yield


def web_downloads() -> QuerySet[Task]:
    return Task.objects.filter(deleted=False, input__import_req__method__name="web-download")


def is_web_download(task: Task) -> bool:
    method = ((task.input or {}).get("import_req") or {}).get("method") or {}
    return method.get("name") == "web-download"


def check_project_limit(project_id: str) -> None:
    """413 when the project already has its share of unfinished web-downloads.

    Call inside :func:`serialised`, in the transaction that records the new task.
    """
    limit = settings.WEB_DOWNLOAD_PROJECT_LIMIT
    if limit <= 0:
        return
    unfinished = web_downloads().filter(
        owner=project_id, status__in=(TaskStatus.PENDING, TaskStatus.PROCESSING)
    )
    live = sum(1 for task in unfinished if not task.is_stale())
    if live >= limit:
        # Glance's LimitExceeded wording, with what was exceeded as its "response body".
        raise GlanceError(
            413,
            "The request returned a 413 Request Entity Too Large. This generally means that "
            "rate limiting or a quota threshold was breached.\n\nThe response body:\n"
            f"Project {project_id} is over its limit of {limit} concurrent web-download "
            f"imports ({live} unfinished); retry once one of them has finished.",
        )


def take_slot(task: Task) -> bool:
    """Claim ``task`` (``pending → processing``) if a web-download slot is free; otherwise
    leave it ``pending`` with :data:`WAITING`. False when the job has nothing to run now."""
    with serialised():
        running = (
            web_downloads()
            .filter(status=TaskStatus.PROCESSING)
            .exclude(pk=task.pk)
            .only("status", "heartbeat_at", "updated_at")
        )
        busy = sum(1 for other in running if not other.is_stale())
        if busy < max(settings.WEB_DOWNLOAD_WORKERS, 1):
            return task.claim()
        now = timezone.now()
        # The heartbeat keeps the lock on its image: it waits, it is not dead.
        Task.objects.filter(pk=task.pk, status=TaskStatus.PENDING).update(
            message=WAITING, heartbeat_at=now, updated_at=now
        )
        return False


def waiting() -> QuerySet[Task]:
    return web_downloads().filter(status=TaskStatus.PENDING, message=WAITING)


def keep_waiting_alive() -> None:
    """Beat the heartbeat of every waiting download: running downloads do it for them."""
    waiting().update(heartbeat_at=timezone.now())


def wake_next() -> Task | None:
    """Enqueue the oldest waiting download again (a slot has just been freed)."""
    task = waiting().order_by("created_at", "id").first()
    if task is not None:
        wake(task)
    return task


def wake(task: Task) -> None:
    now = timezone.now()
    Task.objects.filter(pk=task.pk, status=TaskStatus.PENDING).update(
        heartbeat_at=now, updated_at=now
    )
    # By dotted path and id, as every import job: a second delivery finds it claimed.
    async_task("tasks.jobs.run_import", task.id, sync=settings.IMPORT_JOBS_SYNC)
