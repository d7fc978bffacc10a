"""Interoperable import (v2.6) through the HTTP API, jobs run inline (django-q2 sync)."""

from __future__ import annotations

import hashlib
import json

import pytest

from images.models import Image, StagedData
from tasks.models import Task
from tests.support import JSON, error_message, reloaded

OCTET = "application/octet-stream"
DATA = b"staged image bytes " * 4096


def stage(persona, image, data=DATA):
    return persona.client().put(
        f"/v2/images/{image.id}/stage", data=data, content_type=OCTET, HTTP_ACCEPT=JSON
    )


def start_import(persona, image, body, **extra):
    return persona.client().post(
        f"/v2/images/{image.id}/import",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_ACCEPT=JSON,
        **extra,
    )


GLANCE_DIRECT = {"method": {"name": "glance-direct"}}


@pytest.fixture
def queued(make_image):
    return make_image(disk_format="raw", container_format="bare")


def test_stage_records_size_and_hashes_and_moves_to_uploading(owner, queued, data_dir):
    response = stage(owner, queued)

    assert response.status_code == 204
    image = reloaded(queued)
    assert (image.status, image.size, image.checksum) == ("uploading", len(DATA), None)
    staged = StagedData.objects.get(image=image)
    assert staged.checksum == hashlib.md5(DATA).hexdigest()
    assert staged.os_hash_value == hashlib.sha512(DATA).hexdigest()
    assert staged.detected_format == "raw"
    assert (data_dir / "staging" / image.id).read_bytes() == DATA


def test_stage_twice_is_409(owner, queued):
    stage(owner, queued)

    response = stage(owner, queued, b"other")

    assert response.status_code == 409
    assert (reloaded(queued).status, reloaded(queued).size) == ("uploading", len(DATA))


def test_stage_by_image_member_is_403(member, make_image):
    image = make_image(members={member.project_id: "accepted"})

    assert stage(member, image).status_code == 403
    assert reloaded(image).status == "queued"


def test_stage_over_size_cap_is_413_and_leaves_nothing(owner, queued, settings, data_dir):
    settings.IMAGE_SIZE_CAP = 100

    response = stage(owner, queued)

    assert response.status_code == 413
    assert reloaded(queued).status == "queued"
    assert list((data_dir / "staging").glob("*")) == []


def test_glance_direct_import_activates_with_staging_hashes(owner, queued, data_dir):
    stage(owner, queued)

    response = start_import(owner, queued, GLANCE_DIRECT)

    assert response.status_code == 202
    assert response.content == b""
    assert not response["Content-Type"].startswith("application/json")
    image = reloaded(queued)
    assert image.status == "active"
    assert image.checksum == hashlib.md5(DATA).hexdigest()
    assert image.os_hash_value == hashlib.sha512(DATA).hexdigest()
    assert (data_dir / "images" / image.id).read_bytes() == DATA
    assert not (data_dir / "staging" / image.id).exists()
    props = image.property_dict()
    assert "os_glance_import_task" not in props
    assert props["os_glance_importing_to_stores"] == ""
    task = Task.objects.get(image_id=image.id)
    assert (task.status, task.result, task.type) == (
        "success",
        {"image_id": image.id},
        "api_image_import",
    )
    assert task.input["import_req"] == GLANCE_DIRECT
    assert task.percent == 100


def test_glance_direct_without_staging_is_409(owner, queued):
    response = start_import(owner, queued, GLANCE_DIRECT)

    assert response.status_code == 409
    assert (
        error_message(response)
        == "Image needs to be staged before 'glance-direct' method can be used"
    )


@pytest.mark.parametrize("method", ["glance-direct", "web-download"])
def test_import_into_an_active_image_is_409_saying_so_first(owner, make_image, method):
    image = make_image(status="active", disk_format="raw", container_format="bare")
    body = {"method": {"name": method, "uri": "https://example.com/disk.img"}}

    response = start_import(owner, image, body)

    assert response.status_code == 409
    assert error_message(response) == "Image with status active cannot be target for import"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "Import request requires a 'method' field."),
        ({"method": {}}, "Import request requires a 'name' field."),
        ({"method": {"name": "glance-download"}}, "Unknown import method name 'glance-download'."),
        (
            {"method": {"name": "glance-direct"}, "all_stores": "yes"},
            "'all_stores' must be boolean value only",
        ),
        (
            {"method": {"name": "glance-direct"}, "all_stores_must_succeed": False},
            "All_stores_must_succeed can only be set with enabled_backends option",
        ),
    ],
)
def test_import_body_refusals(owner, queued, body, message):
    stage(owner, queued)

    response = start_import(owner, queued, body)

    assert response.status_code == 400
    assert error_message(response) == message
    assert reloaded(queued).status == "uploading"


def test_import_needs_formats(owner, make_image):
    image = make_image()
    stage(owner, image)

    response = start_import(owner, image, GLANCE_DIRECT)

    assert response.status_code == 409
    assert error_message(response) == "'container_format' needs to be set before import"


def test_second_import_while_one_holds_the_lock_is_409(owner, queued):
    stage(owner, queued)
    holder = Task.objects.create(owner=owner.project_id, image_id=queued.id, status="processing")
    queued.take_import_lock(holder.id)
    holder.record_progress(0, None)

    response = start_import(owner, queued, GLANCE_DIRECT)

    assert response.status_code == 409
    assert error_message(response) == "Image has active task"
    assert reloaded(queued).status == "uploading"


def test_stale_lock_is_broken_and_import_proceeds(owner, queued, settings):
    stage(owner, queued)
    dead = Task.objects.create(owner=owner.project_id, image_id=queued.id, status="processing")
    queued.take_import_lock(dead.id)
    settings.IMPORT_STALE_SECONDS = -1

    response = start_import(owner, queued, GLANCE_DIRECT)

    assert response.status_code == 202
    assert reloaded(queued).status == "active"
    dead.refresh_from_db()
    assert (dead.status, dead.message) == ("failure", "Expired lock preempted")


def test_failed_glance_direct_import_keeps_staged_data_and_can_be_retried(
    owner, make_image, data_dir
):
    image = make_image(disk_format="qcow2", container_format="bare")
    stage(owner, image)

    failed = start_import(owner, image, GLANCE_DIRECT)

    assert failed.status_code == 202
    image = reloaded(image)
    assert image.status == "uploading"
    assert (data_dir / "staging" / image.id).read_bytes() == DATA
    assert not (data_dir / "images" / image.id).exists()
    task = Task.objects.get(image_id=image.id)
    assert task.status == "failure"
    assert "does not match stream data raw" in task.message
    assert "os_glance_import_task" not in image.property_dict()

    Image.objects.filter(pk=image.pk).update(disk_format="raw")
    retried = start_import(owner, image, GLANCE_DIRECT)

    assert retried.status_code == 202
    assert reloaded(image).status == "active"


def test_copy_image_is_admin_only(owner, make_image):
    image = make_image(status="active", disk_format="raw", container_format="bare")

    response = start_import(owner, image, {"method": {"name": "copy-image"}})

    assert response.status_code == 403
    assert error_message(response) == "You are not authorized to complete copy_image action."


def test_import_switch_off_hides_routes_and_versions(owner, queued, settings, client):
    settings.ENABLE_IMAGE_IMPORT = False

    assert stage(owner, queued).status_code == 404
    assert start_import(owner, queued, GLANCE_DIRECT).status_code == 404
    assert owner.client().get("/v2/info/import").status_code == 404
    ids = {entry["id"] for entry in client.get("/versions").json()["versions"]}
    assert ids == {f"v2.{minor}" for minor in range(6)}
    created = owner.client().post("/v2/images", data="{}", content_type="application/json")
    assert "OpenStack-image-import-methods" not in created


def test_info_import_lists_enabled_methods(owner, settings):
    settings.ENABLED_IMPORT_METHODS = ["glance-direct", "copy-image"]

    response = owner.client().get("/v2/info/import")

    assert response.json() == {
        "import-methods": {
            "description": "Import methods available.",
            "type": "array",
            "value": ["glance-direct", "copy-image"],
        }
    }


def test_image_tasks_lists_the_import(owner, queued):
    stage(owner, queued)
    start_import(owner, queued, GLANCE_DIRECT)

    response = owner.client().get(f"/v2/images/{queued.id}/tasks")

    (row,) = response.json()["tasks"]
    assert row["status"] == "success" and row["image_id"] == queued.id
    assert (
        row["deleted"] is False and "T" in row["created_at"] and not row["created_at"].endswith("Z")
    )
    assert row["progress"]["percent"] == 100


def test_tasks_api_is_admin_only(owner, admin, queued):
    stage(owner, queued)
    start_import(owner, queued, GLANCE_DIRECT)
    task = Task.objects.get(image_id=queued.id)

    assert owner.client().get("/v2/tasks").status_code == 403
    listed = admin.client().get("/v2/tasks").json()
    shown = admin.client().get(f"/v2/tasks/{task.id}").json()

    assert [t["id"] for t in listed["tasks"]] == [task.id]
    assert shown["status"] == "success" and shown["result"] == {"image_id": queued.id}
    assert "roles" not in shown["input"] and "expires_at" in shown


def test_deleting_a_staged_image_removes_its_staged_data(owner, queued, data_dir):
    stage(owner, queued)

    response = owner.client().delete(f"/v2/images/{queued.id}")

    assert response.status_code == 204
    assert not (data_dir / "staging" / queued.id).exists()
    assert not StagedData.objects.filter(image_id=queued.id).exists()
