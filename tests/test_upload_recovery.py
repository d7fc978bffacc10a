"""An upload whose worker died never leaves its image stuck in ``saving``."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

from django.core.management import call_command
from django.utils import timezone

from images import data
from images.models import Image
from tests.support import reloaded

OCTET = "application/octet-stream"


def stuck_saving_image(make_image, data_dir, *, silent_for: timedelta) -> Image:
    image = make_image(status="saving", disk_format="raw", container_format="bare", size=5)
    Image.objects.filter(pk=image.pk).update(updated_at=timezone.now() - silent_for)
    partial = data_dir / "images" / f".{image.id}.partial"
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.write_bytes(b"torn")
    return reloaded(image)


def test_upload_to_stale_saving_image_recovers_and_succeeds(owner, make_image, data_dir):
    image = stuck_saving_image(make_image, data_dir, silent_for=timedelta(minutes=10))

    response = owner.client().put(f"/v2/images/{image.id}/file", data=b"fresh", content_type=OCTET)

    assert response.status_code == 204
    image = reloaded(image)
    assert (image.status, image.size) == ("active", 5)
    assert (data_dir / "images" / image.id).read_bytes() == b"fresh"
    assert not (data_dir / "images" / f".{image.id}.partial").exists()


def test_upload_to_live_saving_image_is_409_and_leaves_it_alone(owner, make_image, data_dir):
    image = stuck_saving_image(make_image, data_dir, silent_for=timedelta(seconds=5))

    response = owner.client().put(f"/v2/images/{image.id}/file", data=b"x", content_type=OCTET)

    assert response.status_code == 409
    assert reloaded(image).status == "saving"
    assert (data_dir / "images" / f".{image.id}.partial").exists()


def test_recover_uploads_command_resets_only_stale_uploads(make_image, data_dir):
    stale = stuck_saving_image(make_image, data_dir, silent_for=timedelta(minutes=10))
    live = stuck_saving_image(make_image, data_dir, silent_for=timedelta(seconds=5))
    out = StringIO()

    call_command("recover_uploads", stdout=out)

    assert f"Recovered {stale.id}" in out.getvalue()
    assert "1 stuck upload(s) were reset to queued" in out.getvalue()
    assert (reloaded(stale).status, reloaded(stale).size) == ("queued", None)
    assert reloaded(live).status == "saving"
    assert not (data_dir / "images" / f".{stale.id}.partial").exists()


def test_recover_uploads_dry_run_changes_nothing(make_image, data_dir):
    stale = stuck_saving_image(make_image, data_dir, silent_for=timedelta(minutes=10))
    out = StringIO()

    call_command("recover_uploads", "--dry-run", stdout=out)

    assert f"Would recover {stale.id}" in out.getvalue()
    assert reloaded(stale).status == "saving"


def test_upload_heartbeat_keeps_a_slow_upload_alive(make_image, monkeypatch):
    image = make_image(status="saving", write_attempt="a" * 32)
    Image.objects.filter(pk=image.pk).update(updated_at=timezone.now() - timedelta(minutes=10))
    monkeypatch.setattr(data, "HEARTBEAT_SECONDS", 0)

    data.UploadHeartbeat(image, "a" * 32)(1024)

    assert not reloaded(image).is_stale_upload()


def test_deleting_an_image_whose_upload_died_removes_its_partial_file(owner, make_image, data_dir):
    image = stuck_saving_image(make_image, data_dir, silent_for=timedelta(minutes=10))
    attempt_partial = data_dir / "images" / f".{image.id}.{'b' * 32}.partial"
    attempt_partial.write_bytes(b"x" * 1024)

    response = owner.client().delete(f"/v2/images/{image.id}")

    assert response.status_code == 204
    assert not attempt_partial.exists()
    assert not (data_dir / "images" / f".{image.id}.partial").exists()
    assert reloaded(image).deleted
