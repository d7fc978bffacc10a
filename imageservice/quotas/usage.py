"""What a project consumes of each limit, counted as Glance counts it
(``glance.db.sqlalchemy.api``), plus the room in-flight writes hold (``DataReservation``)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import F, Q, QuerySet, Sum
from django.utils import timezone

from images.models import IMPORTING_TO_STORES, Image, ImageLocation, ImageProperty, ImageStatus
from imageservice.quotas.models import DataReservation, ReservationArea
from tasks.models import TaskStatus

MIB = 1024 * 1024
# Images in these statuses hold nothing: Glance leaves them out of every count.
NOT_COUNTED = (ImageStatus.KILLED, ImageStatus.PENDING_DELETE, ImageStatus.DELETED)
TRANSFERRING = (ImageStatus.SAVING, ImageStatus.UPLOADING, ImageStatus.IMPORTING)


def _owned(owner: str | None) -> QuerySet[Image]:
    return Image.objects.filter(owner=owner, deleted=False).exclude(status__in=NOT_COUNTED)


def _copying(owner: str | None) -> QuerySet[Image]:
    """Images at rest that a copy-image import is adding stores to: it goes through staging."""
    copying = ImageProperty.objects.filter(name=IMPORTING_TO_STORES).exclude(value="")
    return _owned(owner).exclude(status__in=TRANSFERRING).filter(pk__in=copying.values("image_id"))


def _total_size(images: QuerySet[Image]) -> int:
    return images.filter(size__gt=0).aggregate(total=Sum("size"))["total"] or 0


def stored_bytes(owner: str | None, excluding: Image | None = None) -> int:
    """Bytes the project keeps in stores: each image's size once per store holding it."""
    locations = ImageLocation.objects.filter(image__in=_owned(owner), image__size__gt=0)
    if excluding is not None:
        locations = locations.exclude(image=excluding)
    return locations.aggregate(total=Sum("image__size"))["total"] or 0


def staged_bytes(owner: str | None) -> int:
    """Bytes in staging: staged or importing images, and images being copied between stores."""
    transferring = _owned(owner).filter(status__in=(ImageStatus.UPLOADING, ImageStatus.IMPORTING))
    return _total_size(transferring) + _total_size(_copying(owner))


def image_count(owner: str | None) -> int:
    return _owned(owner).count()


def uploading_count(owner: str | None) -> int:
    """Images being uploaded, staged or imported, and images being copied between stores."""
    return _owned(owner).filter(status__in=TRANSFERRING).count() + _copying(owner).count()


def _running_writes() -> QuerySet[DataReservation]:
    """Reservations whose write still runs: an upload or staging whose image is written by
    that attempt and beats, or a web-download whose import task beats."""
    now = timezone.now()
    writing = Q(
        image__write_attempt=F("attempt"),
        image__status__in=(ImageStatus.SAVING, ImageStatus.UPLOADING),
        image__updated_at__gte=now - timedelta(seconds=settings.UPLOAD_STALE_SECONDS),
    )
    importing = Q(
        image__status=ImageStatus.IMPORTING,
        task__status=TaskStatus.PROCESSING,
        task__heartbeat_at__gte=now - timedelta(seconds=settings.IMPORT_STALE_SECONDS),
    )
    return DataReservation.objects.filter(writing | importing, image__deleted=False)


def reserved_bytes(owner: str | None, area: str, excluding: DataReservation | None = None) -> int:
    reservations = _running_writes().filter(owner=owner or "", area=area)
    if excluding is not None:
        reservations = reservations.exclude(pk=excluding.pk)
    return reservations.aggregate(total=Sum("size"))["total"] or 0


def store_bytes_in_use(owner: str | None) -> int:
    return stored_bytes(owner) + reserved_bytes(owner, ReservationArea.STORE)


def staging_bytes_in_use(owner: str | None) -> int:
    return staged_bytes(owner) + reserved_bytes(owner, ReservationArea.STAGING)


def dead_reservations() -> QuerySet[DataReservation]:
    """Rows left by writers that ended without releasing them (a killed process)."""
    return DataReservation.objects.exclude(pk__in=_running_writes().values("pk"))
