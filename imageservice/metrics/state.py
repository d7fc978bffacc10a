"""Figures read from the database when ``/metrics`` is scraped: they describe the service's
state, not this process's work, so every worker answers the same."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.utils import timezone
from django_q.brokers import get_broker
from prometheus_client.core import GaugeMetricFamily

from images.models import Image, ImageStatus, StagedData
from tasks.models import Task, TaskStatus


class StateCollector:
    def collect(self):
        yield _gauge(
            "imageservice_job_queue_depth",
            "Jobs (imports, housekeeping) waiting in the queue for a worker.",
            get_broker().queue_size(),
        )
        yield _gauge(
            "imageservice_stuck_uploads",
            "Uploads and stagings silent for UPLOAD_STALE_SECONDS: their writer died.",
            stuck_uploads(),
        )
        yield _gauge(
            "imageservice_stuck_imports",
            "Unfinished import tasks without a heartbeat for IMPORT_STALE_SECONDS.",
            stuck_imports(),
        )
        yield _gauge(
            "imageservice_staging_bytes",
            "Bytes of staged data kept for imports.",
            StagedData.objects.aggregate(total=Sum("size"))["total"] or 0,
        )
        images = GaugeMetricFamily(
            "imageservice_images", "Images that are not deleted, by status.", labels=["status"]
        )
        counts = dict(
            Image.objects.alive().values_list("status").annotate(n=Count("id")).order_by()
        )
        for status in ImageStatus.values:
            if status != ImageStatus.DELETED:
                images.add_metric([status], counts.get(status, 0))
        yield images


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def stuck_uploads() -> int:
    return Image.objects.alive().stale_uploads().count()


def stuck_imports() -> int:
    stale = timedelta(seconds=settings.IMPORT_STALE_SECONDS)
    now = timezone.now()
    # As Task.is_stale: a pending task may wait in the queue, so it gets twice as long.
    return Task.objects.filter(
        Q(status=TaskStatus.PROCESSING, heartbeat_at__lt=now - stale)
        | Q(status=TaskStatus.PENDING, updated_at__lt=now - 2 * stale)
    ).count()
