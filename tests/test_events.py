"""The event stream itself: one dispatch to every subscriber, a failing subscriber isolated,
console configuration changes recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from imageservice import events
from imageservice.audit.models import AuditEvent
from imageservice.notifications.payloads import isotime
from importplugins import import_settings

pytestmark = pytest.mark.django_db(transaction=True)


def test_failing_subscriber_does_not_stop_the_others(monkeypatch, make_image):
    received = []

    def broken(event):
        raise RuntimeError("subscriber down")

    monkeypatch.setattr(events, "_subscribers", [broken, received.append])
    image = make_image()

    events.emit("image.update", image=image)

    assert [(event.action, event.image_id) for event in received] == [("image.update", image.id)]


def test_each_event_reaches_every_subscriber_once(make_image):
    image = make_image()

    events.emit("image.reactivate", image=image, changes={"status": ["deactivated", "active"]})

    assert AuditEvent.objects.filter(image_id=image.id).count() == 1
    assert [path.rsplit(".", 1)[-1] for path in events.SUBSCRIBERS] == [
        "record",
        "publish",
        "count",
    ]


def test_field_changes_lists_only_differences():
    before = {"name": "a", "min_ram": 0, "os_distro": "debian"}
    after = {"name": "b", "min_ram": 0, "hw_disk_bus": "scsi"}

    assert events.field_changes(before, after) == {
        "hw_disk_bus": [None, "scsi"],
        "name": ["a", "b"],
        "os_distro": ["debian", None],
    }


def test_isotime_is_glances_format():
    at = datetime(2026, 12, 1, 13, 4, 5, 678901, tzinfo=timezone(timedelta(hours=2)))

    assert isotime(at) == "2026-12-01T11:04:05Z"
    assert isotime(datetime(2026, 1, 2, tzinfo=UTC)) == "2026-01-02T00:00:00Z"
    assert isotime(None) is None


def test_import_settings_change_recorded_with_old_and_new():
    values = import_settings.current()
    import_settings.apply(values)
    AuditEvent.objects.all().delete()

    import_settings.apply(
        import_settings.ImportSettingsValues(
            **{**vars(values), "import_plugins": ["image_decompression", "no_op"]}
        )
    )
    import_settings.apply(import_settings.current())  # unchanged: nothing recorded

    row = AuditEvent.objects.get()
    assert row.action == "import_settings.update"
    assert row.changes == {
        "import_plugins": [values.import_plugins, ["image_decompression", "no_op"]]
    }
