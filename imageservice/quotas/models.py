"""Per-project limits (Glance's unified-limits resources), the lock their checks take and the
room in-flight writes hold against them."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from images.models import Image

# Glance's resource names (``glance.quota.keystone``), also the API's keys.
IMAGE_SIZE_TOTAL = "image_size_total"
IMAGE_STAGE_TOTAL = "image_stage_total"
IMAGE_COUNT_TOTAL = "image_count_total"
IMAGE_COUNT_UPLOADING = "image_count_uploading"
LIMIT_NAMES = (IMAGE_SIZE_TOTAL, IMAGE_STAGE_TOTAL, IMAGE_COUNT_TOTAL, IMAGE_COUNT_UPLOADING)
UNLIMITED = -1


def _limit_field(unit: str) -> models.BigIntegerField:
    return models.BigIntegerField(
        null=True,
        blank=True,
        help_text=f"{unit}; -1 for unlimited; empty for the site's default.",
    )


class ProjectLimits(models.Model):
    """One project's own limits; an empty field falls back to the site's default
    (``QUOTA_IMAGE_*`` settings)."""

    project = models.CharField(primary_key=True, max_length=255)
    image_size_total = _limit_field("MiB kept in stores, once per store holding an image")
    image_stage_total = _limit_field("MiB in the staging area")
    image_count_total = _limit_field("Images")
    image_count_uploading = _limit_field("Images being uploaded, staged or imported at once")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "project limits"
        verbose_name_plural = "project limits"

    def __str__(self) -> str:
        return self.project

    def overrides(self) -> dict[str, int]:
        """The limits this row sets (the others are the site's defaults)."""
        values = {name: getattr(self, name) for name in LIMIT_NAMES}
        return {name: value for name, value in values.items() if value is not None}


class QuotaLock(models.Model):
    """The row a project's quota checks lock, so that a check and what it admits (an image, a
    reservation) commit together: two requests can never both take the last room."""

    project = models.CharField(primary_key=True, max_length=255)

    def __str__(self) -> str:
        return self.project


class ReservationArea(models.TextChoices):
    STORE = "store"
    STAGING = "staging"


class DataReservation(models.Model):
    """Bytes an upload, a staging or a web-download holds against its project's limits before
    writing them.

    It counts only while its writer runs: an upload or staging while its image is still written
    by its attempt and beating, a web-download while its import task beats. So a writer killed
    mid-stream stops holding room after ``UPLOAD_STALE_SECONDS`` (``IMPORT_STALE_SECONDS``)
    even before ``recover_uploads`` removes the row.
    """

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="reservations")
    # The import writing, for a web-download (whose image no write attempt marks).
    task = models.ForeignKey(
        "tasks.Task", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    attempt = models.CharField(max_length=32)
    owner = models.CharField(max_length=255, db_index=True)
    area = models.CharField(max_length=16, choices=ReservationArea.choices)
    size = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["image", "attempt"], name="one_reservation_per_write")
        ]

    def __str__(self) -> str:
        return f"{self.image_id} ({self.area}): {self.size} bytes"
