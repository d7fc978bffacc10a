"""The console index's dashboard: what to look at before digging, each figure with the link to
the filtered list it counts.

Every figure is an aggregate (a ``COUNT``/``SUM`` grouped in the database), so the number of
queries does not grow with the images, tasks or events; only the staging figures read the
staging area, through the staging page's own ``staging_overview()`` (the cleanup's dry run),
so the dashboard and that page never disagree about what is an orphan.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db.models import Count, Sum
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from images.models import Image, ImageLocation, ImageStatus, StagedData
from images.storage import stores
from images.storage.filesystem import FilesystemStore
from imageservice.admin_projects import project_names
from imageservice.audit.models import AuditEvent
from imageservice.policy_admin import staging_overview
from tasks.models import Task, TaskStatus

TOP_PROJECTS = 10
RECENT_EVENTS = 10
FAILED_WINDOW = timedelta(hours=24)
RUNNING = (TaskStatus.PENDING, TaskStatus.PROCESSING)


@dataclass(frozen=True)
class Figure:
    """One number of the dashboard and the console list that shows what it counts."""

    label: str
    count: int
    url: str
    bytes: int | None = None
    # Free bytes where the figure is a place on a local file system (a file store).
    free_bytes: int | None = None


@dataclass(frozen=True)
class StagingFigures:
    staged_images: int
    staged_bytes: int
    entries: int
    entry_bytes: int
    orphans: int
    orphan_bytes: int
    free_bytes: int | None
    problem: str | None
    url: str


@dataclass(frozen=True)
class Dashboard:
    statuses: list[Figure]
    waiting: list[Figure]
    waiting_hours: float
    stores: list[Figure]
    projects: list[Figure]
    imports: list[Figure]
    staging: StagingFigures
    events: list[AuditEvent]
    events_url: str


def dashboard() -> Dashboard:
    """Every figure of the console index, computed now."""
    waiting_age = timedelta(seconds=settings.DASHBOARD_WAITING_SECONDS)
    return Dashboard(
        statuses=image_statuses(),
        waiting=waiting_images(waiting_age),
        waiting_hours=waiting_age.total_seconds() / 3600,
        stores=store_usage(),
        projects=top_projects(),
        imports=import_figures(),
        staging=staging_figures(),
        events=list(AuditEvent.objects.order_by("-at", "-id")[:RECENT_EVENTS]),
        events_url=reverse("admin:audit_auditevent_changelist"),
    )


def _list_url(name: str, **params: str) -> str:
    url = reverse(f"admin:{name}_changelist")
    return f"{url}?{urlencode(params)}" if params else url


def image_statuses() -> list[Figure]:
    """Images that are not deleted, by status (every status, zeros included)."""
    counts = dict(Image.objects.alive().values_list("status").annotate(n=Count("id")).order_by())
    return [
        Figure(status, counts.get(status, 0), _list_url("images_image", status__exact=status))
        for status in ImageStatus.values
        if status != ImageStatus.DELETED
    ]


def waiting_images(older_than: timedelta) -> list[Figure]:
    """Queued and uploading images created more than ``older_than`` ago, by status: created
    and never given data, or staged and never imported."""
    counts = dict(
        Image.objects.alive()
        .waiting_for_data(older_than)
        .values_list("status")
        .annotate(n=Count("id"))
        .order_by()
    )
    return [
        Figure(
            status,
            counts.get(status, 0),
            _list_url("images_image", status__exact=status, waiting="old"),
        )
        for status in (ImageStatus.QUEUED, ImageStatus.UPLOADING)
    ]


def store_usage() -> list[Figure]:
    """Per store: the images it holds a copy of and their bytes (an image in two stores counts
    in both), and the free space of file stores. Configured stores first, then any store name
    that only old locations still carry."""
    rows = {
        row["store"]: row
        for row in ImageLocation.objects.filter(image__deleted=False)
        .values("store")
        .annotate(images=Count("image_id"), bytes=Coalesce(Sum("image__size"), 0))
        .order_by()
    }
    configured = stores.all_stores()
    names = [*configured, *sorted(set(rows) - set(configured))]
    return [
        Figure(
            name,
            rows.get(name, {}).get("images", 0),
            _list_url("images_image", store=name),
            bytes=rows.get(name, {}).get("bytes", 0),
            free_bytes=_free_bytes_of_store(configured.get(name)),
        )
        for name in names
    ]


def _free_bytes_of_store(store: object) -> int | None:
    if isinstance(store, FilesystemStore):
        return free_bytes(store.directory)
    return None


def free_bytes(path: Path) -> int | None:
    """Free bytes on the file system that holds (or will hold, once created) ``path``."""
    # A store or staging directory is made on first write: its nearest existing parent is
    # where its bytes will go.
    for place in (path, *path.parents):
        try:
            return shutil.disk_usage(place).free
        except FileNotFoundError:
            continue
        except OSError:
            return None
    return None


def top_projects(limit: int = TOP_PROJECTS) -> list[Figure]:
    """The ``limit`` projects owning the most image bytes (images without an owner left out)."""
    rows = list(
        Image.objects.alive()
        .exclude(owner=None)
        .values("owner")
        .annotate(images=Count("id"), bytes=Coalesce(Sum("size"), 0))
        .order_by("-bytes", "owner")[:limit]
    )
    names = project_names(row["owner"] for row in rows)
    return [
        Figure(
            names.get(row["owner"], row["owner"]),
            row["images"],
            _list_url("images_image", owner=row["owner"]),
            bytes=row["bytes"],
        )
        for row in rows
    ]


def import_figures() -> list[Figure]:
    """Imports running, failed in the last 24 h and stuck (the task list's own "stuck" filter),
    and uploads whose writer stopped (as ``recover_uploads`` finds them)."""
    # The same lookups make the count and the link, so the list shows what was counted.
    failed = {
        "status__exact": TaskStatus.FAILURE,
        "updated_at__gte": (timezone.now() - FAILED_WINDOW).isoformat(),
    }
    return [
        Figure(
            "running",
            Task.objects.filter(status__in=RUNNING).count(),
            _list_url("tasks_task", status__in=",".join(RUNNING)),
        ),
        Figure(
            "failed in the last 24 h",
            Task.objects.filter(**failed).count(),
            _list_url("tasks_task", **failed),
        ),
        Figure("stuck", Task.objects.stuck().count(), _list_url("tasks_task", stuck="yes")),
        Figure(
            "uploads stopped",
            Image.objects.alive().stale_uploads().count(),
            _list_url("images_image", waiting="stuck"),
        ),
    ]


def staging_figures() -> StagingFigures:
    """Staged data waiting for imports, and the staging area as its page shows it."""
    staged = StagedData.objects.aggregate(images=Count("pk"), bytes=Coalesce(Sum("size"), 0))
    overview = staging_overview()
    entries = overview["entries"]
    orphans = overview.get("orphans", [])
    root = overview["root"]
    return StagingFigures(
        staged_images=staged["images"],
        staged_bytes=staged["bytes"],
        entries=len(entries),
        entry_bytes=sum(entry.size for entry in entries),
        orphans=len(orphans),
        orphan_bytes=sum(entry.size for entry in orphans),
        free_bytes=free_bytes(root) if isinstance(root, Path) else None,
        problem=overview["problem"],
        url=reverse("admin:staging"),
    )
