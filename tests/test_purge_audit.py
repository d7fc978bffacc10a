"""purge_audit: audit events older than the retention go, newer ones stay; --dry-run counts."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from imageservice.audit.models import AuditEvent


@pytest.fixture
def aged_events(db):
    now = timezone.now()
    for days in (1, 29, 31, 400):
        AuditEvent.objects.create(
            action="image.update", image_id=f"image-{days}", at=now - timedelta(days=days)
        )


def purge(*args: str) -> str:
    out = io.StringIO()
    call_command("purge_audit", *args, stdout=out)
    return out.getvalue()


def kept() -> list[str]:
    return sorted(AuditEvent.objects.values_list("image_id", flat=True))


def test_purge_audit_deletes_events_older_than_retention(aged_events, settings):
    settings.AUDIT_RETENTION_DAYS = 30

    output = purge()

    assert output.startswith("Deleted 2 audit events older than 30 days (before ")
    assert kept() == ["image-1", "image-29"]


def test_purge_audit_dry_run_deletes_nothing(aged_events, settings):
    settings.AUDIT_RETENTION_DAYS = 30

    output = purge("--dry-run")

    assert output.startswith("Would delete 2 audit events older than 30 days (before ")
    assert len(kept()) == 4


def test_purge_audit_days_option_overrides_setting(aged_events, settings):
    settings.AUDIT_RETENTION_DAYS = 30

    purge("--days", "2")

    assert kept() == ["image-1"]


def test_purge_audit_with_unlimited_retention_keeps_everything(aged_events, settings):
    settings.AUDIT_RETENTION_DAYS = 0

    assert purge() == "Audit retention is unlimited: nothing purged.\n"
    assert len(kept()) == 4
