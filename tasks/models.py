"""Tasks: the record of an import as it runs, with its progress and heartbeat."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models.functions import Coalesce
from django.utils import timezone

from imageservice import events


class TaskStatus(models.TextChoices):
    PENDING = "pending"
    PROCESSING = "processing"
    SUCCESS = "success"
    FAILURE = "failure"


TERMINAL = (TaskStatus.SUCCESS, TaskStatus.FAILURE)


def new_task_id() -> str:
    return str(uuid.uuid4())


class TaskQuerySet(models.QuerySet):
    def alive(self) -> TaskQuerySet:
        """Not deleted and not expired: what the API shows."""
        now = timezone.now()
        return self.filter(deleted=False).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )

    def visible_to(self, project_id: str | None, is_admin: bool) -> TaskQuerySet:
        """Admins see every task; anyone else their project's."""
        return self if is_admin else self.filter(owner=project_id)

    def expired(self) -> TaskQuerySet:
        return self.filter(deleted=False, expires_at__lte=timezone.now())

    def stuck(self) -> TaskQuerySet:
        """``Task.is_stale()`` as a query: unfinished and silent for ``IMPORT_STALE_SECONDS``
        (twice that while pending, as a task may wait in the queue)."""
        stale = timedelta(seconds=settings.IMPORT_STALE_SECONDS)
        limit = timezone.now() - stale
        return self.alias(last_beat=Coalesce("heartbeat_at", "updated_at")).filter(
            models.Q(status=TaskStatus.PROCESSING, last_beat__lt=limit)
            | models.Q(status=TaskStatus.PENDING, last_beat__lt=limit - stale)
        )


class Task(models.Model):
    id = models.CharField(primary_key=True, max_length=36, default=new_task_id)
    type = models.CharField(max_length=30, default="api_image_import")
    status = models.CharField(
        max_length=20, choices=TaskStatus.choices, default=TaskStatus.PENDING, db_index=True
    )
    input = models.JSONField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True)
    message = models.TextField(blank=True, default="")
    owner = models.CharField(max_length=255, db_index=True)
    image_id = models.CharField(max_length=36, null=True, blank=True, db_index=True)
    user_id = models.CharField(max_length=64, null=True, blank=True)
    request_id = models.CharField(max_length=70, null=True, blank=True)
    bytes_done = models.BigIntegerField(default=0)
    bytes_total = models.BigIntegerField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(default=timezone.now)
    deleted = models.BooleanField(default=False)
    deleted_at = models.DateTimeField(null=True, blank=True)
    # NODE_NAME of the API node that accepted the task and of the job worker that ran it: where
    # to look for its logs.
    api_node = models.CharField(max_length=255, blank=True, default="")
    worker_node = models.CharField(max_length=255, blank=True, default="")

    objects = TaskQuerySet.as_manager()

    class Meta:
        # The lists' default order, and the same order within one status (the console's status
        # filter, the API's ?status=): neither sorts the matching rows.
        indexes = [
            models.Index(fields=["created_at", "id"]),
            models.Index(fields=["status", "created_at", "id"]),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.id} ({self.status})"

    def is_visible_to(self, project_id: str | None, is_admin: bool) -> bool:
        return is_admin or self.owner == project_id

    @property
    def percent(self) -> int | None:
        if not self.bytes_total:
            return None
        return min(100, self.bytes_done * 100 // self.bytes_total)

    def claim(self) -> bool:
        """``pending → processing`` with a conditional UPDATE: a job delivered twice runs once."""
        now = timezone.now()
        node = settings.NODE_NAME
        claimed = Task.objects.filter(pk=self.pk, status=TaskStatus.PENDING).update(
            status=TaskStatus.PROCESSING, heartbeat_at=now, updated_at=now, worker_node=node
        )
        if claimed:
            self.status, self.heartbeat_at, self.updated_at = TaskStatus.PROCESSING, now, now
            self.worker_node = node
            events.emit("task.processing", task=self)
        return bool(claimed)

    def record_progress(self, bytes_done: int, bytes_total: int | None) -> bool:
        """Save progress and beat the heartbeat; False when the task was taken from us."""
        now = timezone.now()
        message = f"Copied {bytes_done // (1024 * 1024)} MiB"
        self.bytes_done, self.bytes_total, self.message = bytes_done, bytes_total, message
        return bool(
            Task.objects.filter(pk=self.pk, status=TaskStatus.PROCESSING).update(
                bytes_done=bytes_done,
                bytes_total=bytes_total,
                message=message,
                heartbeat_at=now,
                updated_at=now,
            )
        )

    def finish(self, status: str, message: str, result: dict | None = None) -> bool:
        """Move to a terminal status once; the task then expires after TASK_TIME_TO_LIVE.

        Every end of a task passes here (runner, lock breaking, housekeeping), so this is
        where its ``task.success``/``task.failure`` event is emitted.
        """
        now = timezone.now()
        finished = (
            Task.objects.filter(pk=self.pk)
            .exclude(status__in=TERMINAL)
            .update(
                status=status,
                message=message,
                result=result,
                updated_at=now,
                expires_at=now + timedelta(hours=settings.TASK_TIME_TO_LIVE),
            )
        )
        if finished:
            self.status, self.message, self.result = status, message, result
            self.updated_at, self.expires_at = (
                now,
                now + timedelta(hours=settings.TASK_TIME_TO_LIVE),
            )
            failed = status == TaskStatus.FAILURE
            events.emit(
                f"task.{status}",
                outcome=events.FAILURE if failed else events.SUCCESS,
                task=self,
                detail=message,
                facts={
                    "method": self.import_method(),
                    "seconds": (now - self.created_at).total_seconds(),
                },
            )
        return bool(finished)

    def import_method(self) -> str:
        """The import method this task runs (``web-download`` for a legacy ``import`` task)."""
        request = (self.input or {}).get("import_req") or {}
        return (request.get("method") or {}).get("name") or ""

    def is_stale(self) -> bool:
        """Its worker stopped beating: killed, or lost with its queue message."""
        limit = timezone.now() - timedelta(seconds=settings.IMPORT_STALE_SECONDS)
        if self.status == TaskStatus.PENDING:
            # A pending task may merely wait in the queue: give it twice as long, as Glance.
            limit -= timedelta(seconds=settings.IMPORT_STALE_SECONDS)
        return self.status not in TERMINAL and (self.heartbeat_at or self.updated_at) < limit


class NodeRole(models.TextChoices):
    ALL = "all"
    API = "api"
    WORKER = "worker"


class NodeQuerySet(models.QuerySet):
    def live(self) -> NodeQuerySet:
        """Nodes that beat within NODE_STALE_SECONDS and did not say they stopped."""
        limit = timezone.now() - timedelta(seconds=settings.NODE_STALE_SECONDS)
        return self.filter(stopped_at__isnull=True, heartbeat_at__gt=limit)


class Node(models.Model):
    """A running ``serve``: registered at start, beaten while it runs (``tasks.nodes``)."""

    name = models.CharField(primary_key=True, max_length=255)
    role = models.CharField(max_length=10, choices=NodeRole.choices)
    host = models.CharField(max_length=255)
    pid = models.IntegerField()
    # What must agree across nodes: a filesystem staging area only works when it is shared.
    staging_uri = models.CharField(max_length=1024)
    started_at = models.DateTimeField(default=timezone.now)
    heartbeat_at = models.DateTimeField(default=timezone.now)
    stopped_at = models.DateTimeField(null=True, blank=True)

    objects = NodeQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.role})"

    def is_live(self) -> bool:
        limit = timezone.now() - timedelta(seconds=settings.NODE_STALE_SECONDS)
        return self.stopped_at is None and self.heartbeat_at > limit
