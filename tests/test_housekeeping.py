"""Housekeeping commands: staging cleanup, task purge, recovery of imports a dead worker left."""

from __future__ import annotations

import json
import os
import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule

from images.models import IMPORT_LOCK, Image, ImageProperty, StagedData
from tasks.models import Task
from tasks.schedules import ensure_schedules
from tests.support import JSON, reloaded

OCTET = "application/octet-stream"
GLANCE_DIRECT = {"method": {"name": "glance-direct"}}
STALE_MESSAGE = (
    "The worker running this import stopped (no heartbeat for 600 s); the import can be retried."
)


def run(command: str, *args: str) -> list[str]:
    out = StringIO()
    call_command(command, *args, stdout=out)
    return out.getvalue().splitlines()


@pytest.fixture
def staging_dir(data_dir):
    root = data_dir / "staging"
    root.mkdir()
    return root


def put(path, data: bytes, *, hours_old: float = 0):
    path.write_bytes(data)
    if hours_old:
        then = (timezone.now() - timedelta(hours=hours_old)).timestamp()
        os.utime(path, (then, then))
    return path


def staged_record(image, size: int) -> StagedData:
    return StagedData.objects.create(
        image=image, size=size, checksum="0" * 32, os_hash_algo="sha512", os_hash_value="0"
    )


def import_task(image, *, status="processing", silent_for=timedelta(0), **fields) -> Task:
    task = Task.objects.create(
        image_id=image.id,
        owner=image.owner,
        status=status,
        input={"import_req": GLANCE_DIRECT, "backend": ["default"]},
        **fields,
    )
    beat = timezone.now() - silent_for
    Task.objects.filter(pk=task.pk).update(heartbeat_at=beat, updated_at=beat)
    return Task.objects.get(pk=task.pk)


@pytest.fixture
def cluttered(staging_dir, make_image):
    """A staging root holding a bit of everything the sweep must tell apart."""
    gone_id = str(uuid.uuid4())
    deleted = make_image(status="deleted", deleted=True, deleted_at=timezone.now())
    active = make_image(status="active")
    waiting = make_image(status="uploading")
    staged_record(waiting, 4)
    importing = make_image(status="importing")
    live = import_task(importing)
    finished = import_task(active)
    finished.finish("failure", "Import failed")
    outside = staging_dir.parent / "outside"
    put(outside, b"not staging data")
    link_id = str(uuid.uuid4())
    (staging_dir / link_id).symlink_to(outside)
    put(staging_dir / gone_id, b"0123456789")
    put(staging_dir / deleted.id, b"1234567")
    put(staging_dir / active.id, b"12345")
    put(staging_dir / f".{active.id}.partial", b"123")
    put(staging_dir / waiting.id, b"wait", hours_old=100)
    put(staging_dir / importing.id, b"busy!", hours_old=100)
    (staging_dir / f".work-{live.id}").mkdir()
    put(staging_dir / f".work-{live.id}" / "x.qcow2", b"in use")
    (staging_dir / f".work-{finished.id}").mkdir()
    put(staging_dir / f".work-{finished.id}" / "y.qcow2", b"left over")
    put(staging_dir / "notes.txt", b"operator notes")
    return {
        "gone": gone_id,
        "deleted": deleted,
        "active": active,
        "waiting": waiting,
        "importing": importing,
        "live": live,
        "finished": finished,
        "link": link_id,
        "outside": outside,
    }


def test_cleanup_staging_removes_orphans_and_keeps_live_data(cluttered, staging_dir):
    c = cluttered

    lines = run("cleanup_staging")

    assert sorted(lines[:-1]) == sorted(
        [
            f"Removed {c['gone']} (10 bytes): image gone",
            f"Removed {c['deleted'].id} (7 bytes): image deleted",
            f"Removed {c['active'].id} (5 bytes): image is active",
            f"Removed .{c['active'].id}.partial (3 bytes): image is active",
            f"Removed .work-{c['finished'].id} (9 bytes): task finished (failure)",
            f"Skipped {c['link']}: not a direct child of the staging root",
        ]
    )
    assert lines[-1] == (
        "5 staging file(s) were removed, 34 bytes were freed; "
        "0 staged-data record(s) without a file were deleted."
    )
    assert sorted(path.name for path in staging_dir.iterdir()) == sorted(
        [
            c["waiting"].id,
            c["importing"].id,
            f".work-{c['live'].id}",
            c["link"],
            "notes.txt",
        ]
    )
    assert c["outside"].read_bytes() == b"not staging data"
    assert StagedData.objects.filter(image=c["waiting"]).exists()


def test_cleanup_staging_dry_run_changes_nothing(cluttered, staging_dir):
    c = cluttered
    before = sorted(path.name for path in staging_dir.iterdir())

    lines = run("cleanup_staging", "--dry-run")

    assert f"Would remove {c['gone']} (10 bytes): image gone" in lines
    assert f"Would remove .work-{c['finished'].id} (9 bytes): task finished (failure)" in lines
    assert lines[-1] == (
        "5 staging file(s) would be removed, 34 bytes would be freed; "
        "0 staged-data record(s) without a file would be deleted."
    )
    assert sorted(path.name for path in staging_dir.iterdir()) == before


def test_cleanup_staging_verbose_says_why_it_keeps_files(cluttered):
    c = cluttered

    lines = run("cleanup_staging", "--verbosity", "2")

    assert f"Kept {c['waiting'].id}: staged data waiting for its import" in lines
    assert f"Kept {c['importing'].id}: import in progress" in lines
    assert f"Kept .work-{c['live'].id}: import in progress" in lines
    assert "Ignored notes.txt: not a staging file of an image or task" in lines


def test_cleanup_staging_older_than_reaps_abandoned_uploads(staging_dir, make_image):
    abandoned = make_image(status="uploading")
    Image.objects.filter(pk=abandoned.pk).update(updated_at=timezone.now() - timedelta(hours=3))
    put(staging_dir / f".{abandoned.id}.partial", b"torn", hours_old=3)
    waiting = make_image(status="uploading")
    staged_record(waiting, 4)
    put(staging_dir / waiting.id, b"wait", hours_old=3)

    kept = run("cleanup_staging")
    reaped = run("cleanup_staging", "--older-than", "2")

    assert kept == [
        "0 staging file(s) were removed, 0 bytes were freed; "
        "0 staged-data record(s) without a file were deleted."
    ]
    assert reaped == [
        f"Removed .{abandoned.id}.partial (4 bytes): no live task and unchanged for over 2 h",
        "1 staging file(s) were removed, 4 bytes were freed; "
        "0 staged-data record(s) without a file were deleted.",
    ]
    assert sorted(path.name for path in staging_dir.iterdir()) == [waiting.id]


def test_cleanup_staging_deletes_staged_data_rows_without_a_file(staging_dir, make_image):
    lost = make_image(status="uploading")
    staged_record(lost, 9)
    orphan = make_image(status="queued")
    staged_record(orphan, 3)
    put(staging_dir / orphan.id, b"abc")

    lines = run("cleanup_staging")

    assert sorted(lines[:-1]) == sorted(
        [
            f"Removed {orphan.id} (3 bytes): image is queued",
            f"Deleted the staged-data record of image {lost.id}: its staged file is gone",
            f"Deleted the staged-data record of image {orphan.id}: its staged file is gone",
        ]
    )
    assert lines[-1] == (
        "1 staging file(s) were removed, 3 bytes were freed; "
        "2 staged-data record(s) without a file were deleted."
    )
    assert not StagedData.objects.exists()


def test_cleanup_staging_without_a_staging_root_does_nothing(db, data_dir):
    assert run("cleanup_staging", "--verbosity", "0") == []
    assert run("cleanup_staging")[-1].startswith("0 staging file(s) were removed")


# --- purge_tasks ------------------------------------------------------------------------


def test_purge_tasks_soft_deletes_only_expired_tasks(make_image):
    image = make_image()
    expired = import_task(image)
    expired.finish("success", "")
    Task.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(hours=1))
    expired.refresh_from_db()
    recent = import_task(image)
    recent.finish("failure", "Import failed")
    running = import_task(image)

    lines = run("purge_tasks")

    stamp = expired.expires_at.isoformat(timespec="seconds")
    assert lines == [
        f"Purged task {expired.id} (success, expired {stamp})",
        "1 expired task(s) were soft-deleted.",
    ]
    expired.refresh_from_db()
    assert expired.deleted and expired.deleted_at is not None
    assert Task.objects.filter(deleted=True).count() == 1
    assert {recent.pk, running.pk} <= set(Task.objects.alive().values_list("pk", flat=True))


def test_purge_tasks_dry_run_changes_nothing(make_image):
    expired = import_task(make_image())
    expired.finish("failure", "Import failed")
    Task.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(minutes=1))

    lines = run("purge_tasks", "--dry-run")

    assert lines[0].startswith(f"Would purge task {expired.id} (failure, expired ")
    assert lines[1] == "1 expired task(s) would be soft-deleted."
    assert not Task.objects.get(pk=expired.pk).deleted


# --- recover_imports ----------------------------------------------------------------------


def stage(persona, image, data: bytes):
    return persona.client().put(
        f"/v2/images/{image.id}/stage", data=data, content_type=OCTET, HTTP_ACCEPT=JSON
    )


def start_import(persona, image):
    return persona.client().post(
        f"/v2/images/{image.id}/import",
        data=json.dumps(GLANCE_DIRECT),
        content_type="application/json",
        HTTP_ACCEPT=JSON,
    )


def test_killed_import_worker_is_recovered_and_import_retried(
    owner, make_image, settings, data_dir
):
    image = make_image(disk_format="raw", container_format="bare")
    assert stage(owner, image, b"raw bytes " * 100).status_code == 204
    # Enqueue for real into the ORM broker, where no worker will ever pick the job up…
    settings.IMPORT_JOBS_SYNC = False
    assert start_import(owner, image).status_code == 202
    task = Task.objects.get(image_id=image.id)
    # …then play the worker that claimed it, started, and was killed ten minutes ago.
    assert task.claim()
    assert image.move("uploading", "importing")
    old = timezone.now() - timedelta(seconds=600)
    Task.objects.filter(pk=task.pk).update(heartbeat_at=old, updated_at=old)

    lines = run("recover_imports")

    assert lines == [
        f"Failed stale task {task.id} of image {image.id} (no heartbeat for 600 s)",
        "1 stale import task(s) were failed, 0 image(s) stuck in importing were reset, "
        "0 stale import lock(s) were removed.",
    ]
    task.refresh_from_db()
    assert (task.status, task.message) == ("failure", STALE_MESSAGE)
    assert task.expires_at is not None
    assert reloaded(image).status == "uploading"
    assert reloaded(image).import_lock_holder() is None
    assert (data_dir / "staging" / image.id).read_bytes() == b"raw bytes " * 100

    settings.IMPORT_JOBS_SYNC = True
    response = start_import(owner, image)

    assert response.status_code == 202
    image = reloaded(image)
    assert (image.status, image.size) == ("active", 1000)
    assert (data_dir / "images" / image.id).read_bytes() == b"raw bytes " * 100
    assert not (data_dir / "staging" / image.id).exists()


def test_recover_imports_resets_stuck_images_and_stale_locks(make_image, staging_dir):
    stuck_staged = make_image(status="importing")
    staged_record(stuck_staged, 4)
    put(staging_dir / stuck_staged.id, b"data")
    stuck_bare = make_image(status="importing")
    locked = make_image(status="active")
    done = import_task(locked)
    done.finish("success", "")
    ImageProperty.objects.create(image=locked, name=IMPORT_LOCK, value=done.id)
    orphan_lock = make_image(status="uploading")
    ImageProperty.objects.create(image=orphan_lock, name=IMPORT_LOCK, value="no-such-task")
    busy = make_image(status="importing")
    live = import_task(busy, silent_for=timedelta(seconds=30))
    ImageProperty.objects.create(image=busy, name=IMPORT_LOCK, value=live.id)

    lines = run("recover_imports")

    assert sorted(lines[:-1]) == sorted(
        [
            f"Reset image {stuck_staged.id} from importing to uploading (no live import task)",
            f"Reset image {stuck_bare.id} from importing to queued (no live import task)",
            f"Removed stale import lock on image {locked.id} "
            f"(task {done.id} is finished (success))",
            f"Removed stale import lock on image {orphan_lock.id} (task no-such-task is missing)",
        ]
    )
    assert lines[-1] == (
        "0 stale import task(s) were failed, 2 image(s) stuck in importing were reset, "
        "2 stale import lock(s) were removed."
    )
    assert reloaded(stuck_staged).status == "uploading"
    assert (staging_dir / stuck_staged.id).exists()
    assert reloaded(stuck_bare).status == "queued"
    assert reloaded(locked).import_lock_holder() is None
    assert reloaded(orphan_lock).import_lock_holder() is None
    assert (reloaded(busy).status, reloaded(busy).import_lock_holder()) == ("importing", live.id)
    assert Task.objects.get(pk=live.pk).status == "processing"


def test_recover_imports_gives_pending_tasks_twice_as_long(make_image, settings):
    settings.IMPORT_STALE_SECONDS = 300
    image = make_image(status="uploading")
    waiting = import_task(image, status="pending", silent_for=timedelta(seconds=450))
    lost_image = make_image(status="uploading")
    lost = import_task(lost_image, status="pending", silent_for=timedelta(seconds=700))
    Image.objects.filter(pk=lost_image.pk).update(deleted=True, status="deleted")

    lines = run("recover_imports")

    assert lines[0] == (
        f"Failed stale task {lost.id} of image {lost_image.id} (no heartbeat for 700 s)"
    )
    assert Task.objects.get(pk=waiting.pk).status == "pending"
    lost.refresh_from_db()
    assert (lost.status, lost.message) == (
        "failure",
        "The worker running this import stopped (no heartbeat for 700 s); "
        "the image has since been deleted.",
    )


def test_recover_imports_dry_run_changes_nothing(make_image, staging_dir):
    image = make_image(status="importing")
    staged_record(image, 4)
    put(staging_dir / image.id, b"data")
    task = import_task(image, silent_for=timedelta(seconds=600))
    ImageProperty.objects.create(image=image, name=IMPORT_LOCK, value=task.id)

    lines = run("recover_imports", "--dry-run")

    assert lines == [
        f"Would fail stale task {task.id} of image {image.id} (no heartbeat for 600 s)",
        "1 stale import task(s) would be failed, 0 image(s) stuck in importing would be reset, "
        "0 stale import lock(s) would be removed.",
    ]
    assert Task.objects.get(pk=task.pk).status == "processing"
    assert (reloaded(image).status, reloaded(image).import_lock_holder()) == ("importing", task.id)


# --- schedules --------------------------------------------------------------------------


def test_ensure_schedules_twice_creates_each_schedule_once(db):
    ensure_schedules()
    Schedule.objects.filter(name="purge_tasks").update(minutes=1, func="something.else")

    ensure_schedules()

    rows = {
        row.name: (row.func, row.args, row.schedule_type, row.minutes, row.repeats)
        for row in Schedule.objects.all()
    }
    call = "django.core.management.call_command"
    assert rows == {
        "recover_imports": (call, "('recover_imports',)", Schedule.MINUTES, 5, -1),
        "recover_uploads": (call, "('recover_uploads',)", Schedule.MINUTES, 5, -1),
        "cleanup_staging": (call, "('cleanup_staging',)", Schedule.MINUTES, 60, -1),
        "purge_tasks": (call, "('purge_tasks',)", Schedule.MINUTES, 60, -1),
        "cleanup_stores": (call, "('cleanup_stores',)", Schedule.MINUTES, 60, -1),
        "purge_audit": (call, "('purge_audit',)", Schedule.MINUTES, 1440, -1),
    }


def test_ensure_schedules_keeps_the_oldest_of_duplicates(db):
    # Two nodes starting at once may each have created a row: each job must still run once.
    first = ensure_schedules()[0]
    Schedule.objects.create(name=first.name, func=first.func, args=first.args, repeats=-1)

    ensure_schedules()

    assert list(Schedule.objects.filter(name=first.name).values_list("pk", flat=True)) == [first.pk]
