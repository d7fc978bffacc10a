"""The event stream as the audit trail records it: API, console and command actions, each once,
after commit, with who, what, outcome, request id and node."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import transaction
from django.test import Client
from django.utils import timezone

from images.models import Image
from imageservice import events
from imageservice.audit.models import AuditEvent
from tasks.models import Task

# Real transactions: the events are dispatched by transaction.on_commit.
pytestmark = pytest.mark.django_db(transaction=True)

OCTET = "application/octet-stream"
DATA = b"audited bytes " * 1000
PATCH = "application/openstack-images-v2.1-json-patch"


def trail(**filters) -> list[tuple[str, str]]:
    rows = AuditEvent.objects.filter(**filters).order_by("id")
    return [(row.action, row.outcome) for row in rows]


def create(persona, request_id: str = "", **body) -> dict:
    headers = {"HTTP_X_OPENSTACK_REQUEST_ID": request_id} if request_id else {}
    body = {"name": "audited", "disk_format": "raw", "container_format": "bare", **body}
    response = persona.client().post("/v2/images", body, format="json", **headers)
    assert response.status_code == 201, response.content
    return response.json()


def test_api_create_patch_delete_recorded_with_who_what_and_changes(owner, settings):
    image = create(owner, request_id="req-audit-create", min_ram=0)
    operations = [
        {"op": "replace", "path": "/name", "value": "renamed"},
        {"op": "add", "path": "/os_distro", "value": "debian"},
        {"op": "replace", "path": "/min_ram", "value": 512},
    ]
    patched = owner.client().patch(
        f"/v2/images/{image['id']}", json.dumps(operations), content_type=PATCH
    )
    deleted = owner.client().delete(f"/v2/images/{image['id']}")

    assert (patched.status_code, deleted.status_code) == (200, 204)
    assert trail(image_id=image["id"]) == [
        ("image.create", "success"),
        ("image.update", "success"),
        ("image.delete", "success"),
    ]
    created, updated, _ = AuditEvent.objects.filter(image_id=image["id"]).order_by("id")
    assert (created.user_id, created.project_id, created.roles, created.command) == (
        owner.user.keystone_id,
        owner.project_id,
        "member,reader",
        "",
    )
    assert created.request_id == "req-audit-create"
    assert created.node == settings.NODE_NAME
    assert updated.changes == {
        "min_ram": [0, 512],
        "name": ["audited", "renamed"],
        "os_distro": [None, "debian"],
    }
    assert updated.request_id.startswith("req-") and updated.request_id != created.request_id


def test_refused_and_unchanged_requests_record_nothing(owner, outsider):
    image = create(owner)
    AuditEvent.objects.all().delete()

    refused = outsider.client().delete(f"/v2/images/{image['id']}")
    unchanged = owner.client().patch(
        f"/v2/images/{image['id']}",
        json.dumps([{"op": "replace", "path": "/name", "value": "audited"}]),
        content_type=PATCH,
    )

    assert (refused.status_code, unchanged.status_code) == (404, 200)
    assert trail() == []


def test_rolled_back_work_emits_nothing(make_image):
    image = make_image(name="kept")

    with pytest.raises(RuntimeError), transaction.atomic():
        events.emit("image.update", image=image, changes={"name": ["kept", "lost"]})
        raise RuntimeError("rolled back")
    with transaction.atomic():
        events.emit("image.update", image=image, changes={"name": ["kept", "kept too"]})
        assert trail() == []  # not before the commit

    assert [row.changes for row in AuditEvent.objects.all()] == [{"name": ["kept", "kept too"]}]


def test_member_create_and_accept_recorded_for_each_caller(owner, member):
    image = create(owner, visibility="shared")
    added = owner.client().post(
        f"/v2/images/{image['id']}/members", {"member": member.project_id}, format="json"
    )
    accepted = member.client().put(
        f"/v2/images/{image['id']}/members/{member.project_id}",
        {"status": "accepted"},
        format="json",
    )
    removed = owner.client().delete(f"/v2/images/{image['id']}/members/{member.project_id}")

    assert (added.status_code, accepted.status_code, removed.status_code) == (200, 200, 204)
    rows = list(AuditEvent.objects.filter(action__startswith="image.member.").order_by("id"))
    assert [(row.action, row.member_id, row.project_id) for row in rows] == [
        ("image.member.create", member.project_id, owner.project_id),
        ("image.member.update", member.project_id, member.project_id),
        ("image.member.delete", member.project_id, owner.project_id),
    ]
    assert rows[1].changes == {"status": ["pending", "accepted"]}
    assert {row.image_id for row in rows} == {image["id"]}


def test_tags_and_status_actions_recorded_with_old_and_new(owner, admin):
    image = create(owner, tags=["a"])
    owner.client().put(f"/v2/images/{image['id']}/tags/b")
    owner.client().delete(f"/v2/images/{image['id']}/tags/a")
    Image.objects.filter(pk=image["id"]).update(status="active")
    admin.client().post(f"/v2/images/{image['id']}/actions/deactivate")

    rows = list(AuditEvent.objects.filter(image_id=image["id"]).order_by("id"))[1:]
    assert [(row.action, row.changes) for row in rows] == [
        ("image.tag.add", {"tags": [["a"], ["a", "b"]]}),
        ("image.tag.remove", {"tags": [["a", "b"], ["b"]]}),
        ("image.deactivate", {"status": ["active", "deactivated"]}),
    ]
    assert rows[2].user_id == admin.user.keystone_id


def test_upload_success_and_failure_recorded(owner, settings):
    image = create(owner)
    uploaded = owner.client().put(f"/v2/images/{image['id']}/file", DATA, content_type=OCTET)
    settings.IMAGE_SIZE_CAP = 10
    second = create(owner)
    refused = owner.client().put(f"/v2/images/{second['id']}/file", DATA, content_type=OCTET)

    assert (uploaded.status_code, refused.status_code) == (204, 413)
    assert trail(image_id=image["id"]) == [
        ("image.create", "success"),
        ("image.prepare", "success"),
        ("image.upload", "success"),
    ]
    # A size announced over the cap is refused before any write begins.
    assert trail(image_id=second["id"]) == [("image.create", "success")]


def test_upload_refused_after_writing_recorded_as_failure(owner):
    # Raw bytes declared qcow2: the format check fails once the data went by.
    image = create(owner, disk_format="qcow2")

    response = owner.client().put(f"/v2/images/{image['id']}/file", DATA, content_type=OCTET)

    assert response.status_code == 415
    failure = AuditEvent.objects.get(image_id=image["id"], action="image.upload")
    assert failure.outcome == "failure"
    assert failure.detail.startswith(f"Failed to upload image data for image {image['id']}: ")


def test_import_recorded_for_the_caller_through_the_job(owner):
    image = create(owner)
    staged = owner.client().put(f"/v2/images/{image['id']}/stage", DATA, content_type=OCTET)
    imported = owner.client().post(
        f"/v2/images/{image['id']}/import",
        {"method": {"name": "glance-direct"}},
        format="json",
        HTTP_X_OPENSTACK_REQUEST_ID="req-audit-import",
    )

    assert (staged.status_code, imported.status_code) == (204, 202)
    task = Task.objects.get(image_id=image["id"])
    assert trail(image_id=image["id"]) == [
        ("image.create", "success"),
        ("image.stage", "success"),
        ("task.create", "success"),
        ("task.run", "success"),
        ("task.processing", "success"),
        ("image.prepare", "success"),
        ("image.upload", "success"),
        ("task.success", "success"),
    ]
    job_rows = AuditEvent.objects.filter(task_id=task.id).exclude(command="")
    assert {(row.command, row.user_id, row.request_id) for row in job_rows} == {
        ("run_import", owner.user.keystone_id, "req-audit-import")
    }
    assert job_rows.count() == 4  # processing, prepare, upload, success


def test_command_recorded_by_name(owner, make_image, settings):
    stale = timezone.now() - timedelta(seconds=settings.UPLOAD_STALE_SECONDS + 60)
    image = make_image(status="saving")
    Image.objects.filter(pk=image.pk).update(updated_at=stale)

    call_command("recover_uploads", stdout=io.StringIO())

    row = AuditEvent.objects.get(image_id=image.id)
    assert (row.action, row.command, row.user_id, row.changes) == (
        "image.recover",
        "recover_uploads",
        "",
        {"status": ["saving", "queued"]},
    )
    assert row.request_id == ""


def test_console_action_recorded_for_the_operator(admin, make_image):
    image = make_image(status="active")
    console = Client()
    console.force_login(admin.user)

    response = console.post(
        "/admin/images/image/",
        # The confirmation page's "Yes" (post=yes) carries the action out.
        {"action": "deactivate", "_selected_action": [image.pk], "post": "yes"},
        follow=True,
    )

    assert response.status_code == 200
    row = AuditEvent.objects.get(image_id=image.id)
    assert (row.action, row.user_id, row.project_id, row.roles) == (
        "image.deactivate",
        admin.user.keystone_id,
        admin.project_id,
        "admin,member,reader",
    )
    assert row.request_id.startswith("req-")


def test_console_shows_trail_filtered_by_image_and_links_it(admin, owner, make_image):
    first = create(owner, name="first")
    second = create(owner, name="second")
    console = Client()
    console.force_login(admin.user)

    listing = console.get("/admin/audit/auditevent/", {"image_id": first["id"]})
    image_page = console.get(f"/admin/images/image/{first['id']}/change/")
    event = AuditEvent.objects.get(image_id=first["id"])
    event_page = console.get(f"/admin/audit/auditevent/{event.pk}/change/")

    assert listing.status_code == 200
    assert first["id"] in listing.content.decode()
    assert second["id"] not in listing.content.decode()
    assert f"/admin/audit/auditevent/?image_id={first['id']}" in image_page.content.decode()
    assert event_page.status_code == 200
    assert "Save" not in event_page.content.decode()
    assert console.post(f"/admin/audit/auditevent/{event.pk}/delete/").status_code == 403


def test_console_trail_refused_to_non_operators(owner):
    console = Client()
    console.force_login(owner.user)

    assert console.get("/admin/audit/auditevent/").status_code == 302
