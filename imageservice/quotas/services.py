"""Quotas: each project's limits, their checks where Glance makes them, and the reservations
that keep parallel writes from overshooting them together.

Glance checks its storage limits before a write and lets the write itself run over them (its
"soft limits"). Here a write also reserves, under the project's lock, the room for every byte
before writing it, so N parallel uploads can never end over a limit in total.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from images.models import Image
from imageservice.errors import GlanceError
from imageservice.quotas import usage
from imageservice.quotas.models import (
    IMAGE_COUNT_TOTAL,
    IMAGE_COUNT_UPLOADING,
    IMAGE_SIZE_TOTAL,
    IMAGE_STAGE_TOTAL,
    LIMIT_NAMES,
    UNLIMITED,
    DataReservation,
    ProjectLimits,
    QuotaLock,
    ReservationArea,
)
from tasks.models import Task

MIB = usage.MIB
# A write of unknown size reserves this much ahead of its bytes, so that it takes the lock
# once per step instead of once per chunk; what it does not use is freed when it ends.
RESERVATION_STEP = 16 * MIB

# Each limit's current use in the limit's unit (MiB rounded down, as Glance reports it).
MEASURES: dict[str, Callable[[str | None], int]] = {
    IMAGE_SIZE_TOTAL: lambda owner: usage.store_bytes_in_use(owner) // MIB,
    IMAGE_STAGE_TOTAL: lambda owner: usage.staging_bytes_in_use(owner) // MIB,
    IMAGE_COUNT_TOTAL: usage.image_count,
    IMAGE_COUNT_UPLOADING: usage.uploading_count,
}


@dataclass(frozen=True)
class ProjectUsage:
    limit: int
    usage: int

    def as_json(self) -> dict[str, int]:
        return {"limit": self.limit, "usage": self.usage}


def default_limits() -> dict[str, int]:
    """The site's limits for projects without their own (``QUOTA_IMAGE_*`` settings)."""
    return {
        IMAGE_SIZE_TOTAL: settings.QUOTA_IMAGE_SIZE_TOTAL,
        IMAGE_STAGE_TOTAL: settings.QUOTA_IMAGE_STAGE_TOTAL,
        IMAGE_COUNT_TOTAL: settings.QUOTA_IMAGE_COUNT_TOTAL,
        IMAGE_COUNT_UPLOADING: settings.QUOTA_IMAGE_COUNT_UPLOADING,
    }


def own_limits(project: str | None) -> dict[str, int]:
    """The limits the project has of its own (console, ``project_limits``)."""
    own = ProjectLimits.objects.filter(project=project or "").first()
    return own.overrides() if own is not None else {}


def limits_for(project: str | None) -> dict[str, int]:
    """The project's limits: its own where it has them, else the site's defaults; with
    ``USE_KEYSTONE_LIMITS`` Keystone's unified limits instead, as Glance."""
    if settings.USE_KEYSTONE_LIMITS:
        from imageservice.quotas.keystone_limits import keystone_limits  # noqa: PLC0415

        return keystone_limits(project)
    return {**default_limits(), **own_limits(project)}


def project_usage(project: str | None) -> dict[str, ProjectUsage]:
    """``GET /v2/info/usage``: every limit with the project's current use of it."""
    limits = limits_for(project)
    return {name: ProjectUsage(limits[name], MEASURES[name](project)) for name in LIMIT_NAMES}


def set_project_limits(project: str, changes: dict[str, int | None]) -> ProjectLimits | None:
    """Set (a number, -1 for unlimited) or clear (None: back to the site's default) some of a
    project's limits; the row goes once it overrides nothing. The one write path of the console
    and ``project_limits``."""
    unknown = set(changes) - set(LIMIT_NAMES)
    if unknown:
        raise ValueError(f"Unknown limits: {', '.join(sorted(unknown))}")
    for name, value in changes.items():
        if value is not None and value < UNLIMITED:
            raise ValueError(f"{name} must be -1 (unlimited) or more, not {value}.")
    with transaction.atomic():
        row, _ = ProjectLimits.objects.select_for_update().get_or_create(project=project)
        for name, value in changes.items():
            setattr(row, name, value)
        if not row.overrides():
            row.delete()
            return None
        row.updated_at = timezone.now()
        row.save()
    return row


def clear_project_limits(project: str) -> None:
    """Give the project the site's defaults again."""
    set_project_limits(project, dict.fromkeys(LIMIT_NAMES))


def over_limit(project: str | None, name: str, limit: int, current: int, delta: int) -> GlanceError:
    """Glance's 413 for a unified limit: oslo.limit's words inside Glance's LimitExceeded."""
    return GlanceError(
        413,
        "The request returned a 413 Request Entity Too Large. This generally means that rate "
        "limiting or a quota threshold was breached.\n\nThe response body:\n"
        f"Project {project} is over a limit for [Resource {name} is over limit of {limit} due "
        f"to current usage {current} and delta {delta}]",
    )


def enforce(project: str | None, name: str, delta: int = 0) -> None:
    """Refuse (413) when the project's use of ``name`` plus ``delta`` would pass its limit."""
    limit = limits_for(project)[name]
    if limit == UNLIMITED:
        return
    current = MEASURES[name](project)
    if current + delta > limit:
        raise over_limit(project, name, limit, current, delta)


def check_import(image: Image, method: str) -> None:
    """Glance's checks once an import has marked its image (``importing``, or the stores it is
    copied to): the stored total for the staged data going into stores; the staging total and
    the transfers in progress for the methods that go through staging."""
    size = (image.size or 0) // MIB
    if method == "glance-direct":
        enforce(image.owner, IMAGE_SIZE_TOTAL, size)
    else:
        enforce(image.owner, IMAGE_STAGE_TOTAL, size)
        enforce(image.owner, IMAGE_COUNT_UPLOADING)


@contextlib.contextmanager
def project_lock(project: str | None) -> Iterator[None]:
    """A transaction holding the project's quota lock: what is checked inside and what the
    check admits commit together."""
    with transaction.atomic():
        # get_or_create re-reads with the same FOR UPDATE after losing a race to insert the row.
        QuotaLock.objects.select_for_update().get_or_create(project=project or "")
        yield


@contextlib.contextmanager
def admitting(project: str | None, name: str) -> Iterator[None]:
    """Check a count limit for one more image and do what it admits (create the image, start
    the upload) under the project's lock, so parallel requests cannot all take the last place."""
    limit = limits_for(project)[name]
    if limit == UNLIMITED:
        yield
        return
    with project_lock(project):
        current = MEASURES[name](project)
        if current + 1 > limit:
            if name == IMAGE_COUNT_UPLOADING:
                # Glance checks this one once the image counts itself; its message says so.
                raise over_limit(project, name, limit, current + 1, 0)
            raise over_limit(project, name, limit, current, 1)
        yield


# --- reservations -------------------------------------------------------------------------


def legacy_over_quota(size: int, remaining: int) -> GlanceError:
    """Glance's 413 for ``user_storage_quota``."""
    return GlanceError(
        413,
        f"Image exceeds the storage quota: The size of the data {size} will exceed the limit. "
        f"{remaining} bytes remaining.",
    )


class Reservation:
    """The room one write (an upload or a staging) holds against its project's byte limits.

    Call :meth:`make_room` before writing each chunk (``WritePlan.make_room``) and
    :meth:`release` when the write ends, however it ends.
    """

    def __init__(self, image: Image, attempt: str, area: str, task: Task | None = None):
        self.image = image
        self.task = task
        self.owner = image.owner
        self.attempt = attempt
        self.area = area
        self.held = 0
        self.confirmed_at = time.monotonic()
        self.row: DataReservation | None = None
        self.limit_name = IMAGE_SIZE_TOTAL if area == ReservationArea.STORE else IMAGE_STAGE_TOTAL
        self.limit = limits_for(self.owner)[self.limit_name]
        # Glance's legacy user_storage_quota (bytes) only bounds what stores keep.
        self.legacy_quota = settings.USER_STORAGE_QUOTA if area == ReservationArea.STORE else 0

    @property
    def needed(self) -> bool:
        return self.limit != UNLIMITED or bool(self.legacy_quota)

    def make_room(self, size: int, *, exact: bool = False) -> None:
        """Hold room for ``size`` bytes in total (and, unless ``exact``, a step more when it
        fits), or raise the 413 of the limit it would pass."""
        if not self.needed or (size <= self.held and not self._may_have_lapsed()):
            return
        with project_lock(self.owner):
            in_use = self._in_use()
            room = self._room(in_use)
            if size > room:
                raise self._refusal(size, in_use)
            wanted = size if exact else min(size + RESERVATION_STEP, room)
            self._hold(wanted)

    def _may_have_lapsed(self) -> bool:
        # A write silent for UPLOAD_STALE_SECONDS stops counting for the others (its worker
        # looks dead); resuming, it must take its room again instead of trusting what it held.
        return time.monotonic() - self.confirmed_at > settings.UPLOAD_STALE_SECONDS / 2

    def check_fits(self, size: int) -> None:
        """Raise the 413 now if ``size`` bytes cannot fit, holding nothing (a size announced
        before the write begins)."""
        if self.needed:
            in_use = self._in_use()
            if size > self._room(in_use):
                raise self._refusal(size, in_use)

    def release(self) -> None:
        if self.row is not None:
            DataReservation.objects.filter(pk=self.row.pk).delete()
            self.row = None
            self.held = 0

    def _in_use(self) -> int:
        """Bytes the project uses in this area apart from this write."""
        if self.area == ReservationArea.STORE:
            committed = usage.stored_bytes(self.owner, excluding=self.image)
        else:
            committed = usage.staged_bytes(self.owner)
        return committed + usage.reserved_bytes(self.owner, self.area, excluding=self.row)

    def _room(self, in_use: int) -> int:
        rooms = []
        if self.limit != UNLIMITED:
            rooms.append(self.limit * MIB - in_use)
        if self.legacy_quota:
            rooms.append(self.legacy_quota - in_use)
        return max(min(rooms), 0)

    def _refusal(self, size: int, in_use: int) -> GlanceError:
        if self.legacy_quota and size > self.legacy_quota - in_use:
            return legacy_over_quota(size, max(self.legacy_quota - in_use, 0))
        delta = -(-size // MIB)  # whole MiB, rounded up: the write needs all of its bytes
        return over_limit(self.owner, self.limit_name, self.limit, in_use // MIB, delta)

    def _hold(self, size: int) -> None:
        if self.row is None:
            self.row = DataReservation.objects.create(
                image=self.image,
                task=self.task,
                attempt=self.attempt,
                owner=self.owner or "",
                area=self.area,
                size=size,
            )
        else:
            DataReservation.objects.filter(pk=self.row.pk).update(size=size)
        self.held = size
        self.confirmed_at = time.monotonic()


def release_dead_reservations() -> int:
    """Delete the reservations of writes that ended without releasing them (their process was
    killed); they stopped counting already. Returns how many there were."""
    deleted, _ = usage.dead_reservations().delete()
    return deleted


def check_announced(image: Image, area: str, announced: int | None) -> None:
    """Refuse up front a write whose announced size cannot fit (before the image changes)."""
    if announced:
        Reservation(image, "", area).check_fits(announced)


@contextlib.contextmanager
def reserved(
    image: Image, attempt: str, area: str, announced: int | None, task: Task | None = None
) -> Iterator[Reservation]:
    """A reservation for the write ``attempt`` of ``image`` (by import ``task``), holding the
    announced size up front, released when the block ends."""
    reservation = Reservation(image, attempt, area, task)
    try:
        if announced:
            reservation.make_room(announced, exact=True)
        yield reservation
    finally:
        reservation.release()
