"""Quotas (Glance v2.13): ``GET /v2/info/usage`` and the four limits where Glance enforces them
— create, upload, stage, import — with Glance's 413 (glance/quota/keystone.py)."""

from __future__ import annotations

import http.server
import io
import json
import threading
from collections.abc import Iterator

import pytest
from django.utils import timezone

from images.models import Image, ImageLocation, ImageProperty, StagedData
from imageservice.errors import GlanceError
from imageservice.quotas import keystone_limits
from imageservice.quotas import services as quotas
from imageservice.quotas.models import DataReservation, ProjectLimits
from tasks.models import Task
from tests.support import JSON, glance_error, reloaded

MIB = 1024 * 1024
OCTET = "application/octet-stream"
UNLIMITED = {"limit": -1, "usage": 0}
GLANCE_DIRECT = {"method": {"name": "glance-direct"}}


def over_limit(project: str, name: str, limit: int, usage: int, delta: int) -> str:
    return (
        "The request returned a 413 Request Entity Too Large. This generally means that rate "
        "limiting or a quota threshold was breached.\n\nThe response body:\n"
        f"Project {project} is over a limit for [Resource {name} is over limit of {limit} due "
        f"to current usage {usage} and delta {delta}]"
    )


def usage_of(persona) -> dict[str, dict[str, int]]:
    response = persona.client().get("/v2/info/usage", HTTP_ACCEPT=JSON)
    assert response.status_code == 200
    return response.json()["usage"]


def create(persona, **body):
    return persona.client().post(
        "/v2/images",
        data=json.dumps({"disk_format": "raw", "container_format": "bare", **body}),
        content_type="application/json",
        HTTP_ACCEPT=JSON,
    )


def put_data(persona, image, data: bytes, where: str = "file", **headers):
    return persona.client().put(
        f"/v2/images/{image.id}/{where}",
        data=data,
        content_type=OCTET,
        HTTP_ACCEPT=JSON,
        **headers,
    )


def unsized(data: bytes) -> dict[str, object]:
    """Request headers of a body sent without its size (chunked, as glanceclient sends)."""
    return {"CONTENT_LENGTH": "", "wsgi.input": io.BytesIO(data)}


def start_import(persona, image, body: dict):
    return persona.client().post(
        f"/v2/images/{image.id}/import",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_ACCEPT=JSON,
    )


@pytest.fixture
def queued(make_image):
    return make_image(disk_format="raw", container_format="bare")


def stored(make_image, size: int, *stores: str, **fields) -> Image:
    image = make_image(**{"status": "active", "size": size, **fields})
    for store in stores:
        ImageLocation.objects.create(image=image, store=store, url=f"file:///{store}/{image.id}")
    return image


# --- GET /v2/info/usage ------------------------------------------------------------------------


def test_usage_without_limits_shows_unlimited_and_nothing_used(owner):
    assert usage_of(owner) == {
        "image_size_total": UNLIMITED,
        "image_stage_total": UNLIMITED,
        "image_count_total": UNLIMITED,
        "image_count_uploading": UNLIMITED,
    }


def test_usage_counts_size_once_per_store_in_mib_rounded_down(owner, make_image, settings):
    settings.QUOTA_IMAGE_SIZE_TOTAL = 100
    stored(make_image, 3 * MIB, "fast", "slow")
    stored(make_image, MIB + MIB // 2, "fast")

    assert usage_of(owner)["image_size_total"] == {"limit": 100, "usage": 7}


def test_usage_leaves_out_deleted_killed_and_other_projects_images(owner, outsider, make_image):
    stored(make_image, 5 * MIB, "fast", status="killed")
    stored(make_image, 5 * MIB, "fast", status="deleted", deleted=True)
    stored(make_image, 5 * MIB, "fast", owner=outsider.project_id)

    usage = usage_of(owner)

    assert usage["image_size_total"]["usage"] == 0
    assert usage["image_count_total"]["usage"] == 0
    assert usage_of(outsider)["image_size_total"]["usage"] == 5


def test_usage_follows_create_upload_stage_and_delete(owner):
    uploaded = Image.objects.get(pk=create(owner, name="up").json()["id"])
    staged = Image.objects.get(pk=create(owner, name="st").json()["id"])
    assert put_data(owner, uploaded, b"u" * (2 * MIB)).status_code == 204
    assert put_data(owner, staged, b"s" * (3 * MIB), "stage").status_code == 204

    assert usage_of(owner) == {
        "image_size_total": {"limit": -1, "usage": 2},
        "image_stage_total": {"limit": -1, "usage": 3},
        "image_count_total": {"limit": -1, "usage": 2},
        # A staged image waits in 'uploading' for its import: Glance counts it as uploading.
        "image_count_uploading": {"limit": -1, "usage": 1},
    }

    for image in (uploaded, staged):
        assert owner.client().delete(f"/v2/images/{image.id}").status_code == 204

    assert usage_of(owner) == {
        "image_size_total": UNLIMITED,
        "image_stage_total": UNLIMITED,
        "image_count_total": UNLIMITED,
        "image_count_uploading": UNLIMITED,
    }


def test_usage_counts_images_being_copied_as_staged_and_uploading(owner, make_image):
    copying = stored(make_image, 4 * MIB, "fast")
    ImageProperty.objects.create(image=copying, name="os_glance_importing_to_stores", value="slow")

    usage = usage_of(owner)

    assert usage["image_stage_total"]["usage"] == 4
    assert usage["image_count_uploading"]["usage"] == 1


def test_usage_counts_a_running_uploads_reservation(owner, queued):
    queued.status, queued.write_attempt = "saving", "a1"
    queued.save()
    DataReservation.objects.create(
        image=queued, attempt="a1", owner=owner.project_id, area="store", size=5 * MIB
    )

    assert usage_of(owner)["image_size_total"]["usage"] == 5
    assert usage_of(owner)["image_count_uploading"]["usage"] == 1


def test_usage_ignores_the_reservation_of_a_dead_upload(owner, queued, settings):
    queued.status, queued.write_attempt = "saving", "a1"
    queued.save()
    DataReservation.objects.create(
        image=queued, attempt="a1", owner=owner.project_id, area="store", size=5 * MIB
    )
    Image.objects.filter(pk=queued.pk).update(updated_at=queued.updated_at.replace(year=2000))

    assert usage_of(owner)["image_size_total"]["usage"] == 0


def test_usage_shows_the_projects_own_limits_over_the_defaults(owner, outsider, settings):
    settings.QUOTA_IMAGE_COUNT_TOTAL = 10
    ProjectLimits.objects.create(project=owner.project_id, image_count_total=3)

    assert usage_of(owner)["image_count_total"] == {"limit": 3, "usage": 0}
    assert usage_of(outsider)["image_count_total"] == {"limit": 10, "usage": 0}


def test_usage_without_token_is_401(anonymous):
    assert anonymous.get("/v2/info/usage").status_code == 401


# --- image_count_total: create ---------------------------------------------------------------


def test_create_at_count_limit_is_413_and_creates_nothing(owner, make_image, settings):
    settings.QUOTA_IMAGE_COUNT_TOTAL = 1
    make_image()

    response = create(owner, name="one too many")

    assert response.status_code == 413
    assert response.json() == glance_error(
        413, over_limit(owner.project_id, "image_count_total", 1, 1, 1)
    )
    assert Image.objects.filter(name="one too many").count() == 0


def test_create_under_count_limit_is_201(owner, settings):
    settings.QUOTA_IMAGE_COUNT_TOTAL = 1

    assert create(owner, name="first").status_code == 201


def test_project_override_beats_default_both_ways(owner, outsider, settings):
    settings.QUOTA_IMAGE_COUNT_TOTAL = 0
    ProjectLimits.objects.create(project=owner.project_id, image_count_total=-1)

    assert create(owner, name="mine").status_code == 201
    assert create(outsider, name="theirs").status_code == 413

    settings.QUOTA_IMAGE_COUNT_TOTAL = -1
    ProjectLimits.objects.filter(project=owner.project_id).update(image_count_total=0)

    assert create(owner, name="mine again").status_code == 413
    assert create(outsider, name="theirs again").status_code == 201


# --- image_size_total and image_count_uploading: upload --------------------------------------


def test_upload_announced_over_size_total_is_413_before_saving(owner, queued, make_image, settings):
    settings.QUOTA_IMAGE_SIZE_TOTAL = 2
    stored(make_image, MIB, "fast")

    response = put_data(owner, queued, b"x" * (2 * MIB))

    assert response.status_code == 413
    assert response.json() == glance_error(
        413, over_limit(owner.project_id, "image_size_total", 2, 1, 2)
    )
    assert reloaded(queued).status == "queued"
    assert DataReservation.objects.count() == 0


def test_upload_filling_size_total_exactly_is_accepted(owner, queued, make_image, settings):
    settings.QUOTA_IMAGE_SIZE_TOTAL = 2
    stored(make_image, MIB, "fast")

    response = put_data(owner, queued, b"x" * MIB, **unsized(b"x" * MIB))

    assert response.status_code == 204
    assert reloaded(queued).status == "active"
    assert DataReservation.objects.count() == 0


def test_upload_without_size_stops_at_size_total_with_413(owner, queued, make_image, settings):
    """Glance would keep the whole stream (its soft limit); the reservation stops it."""
    settings.QUOTA_IMAGE_SIZE_TOTAL = 2
    stored(make_image, MIB, "fast")

    response = put_data(owner, queued, b"", **unsized(b"x" * (MIB + 1)))

    assert response.status_code == 413
    assert response.json() == glance_error(
        413, over_limit(owner.project_id, "image_size_total", 2, 1, 2)
    )
    row = reloaded(queued)
    assert (row.status, row.size) == ("queued", None)
    assert not ImageLocation.objects.filter(image=queued).exists()
    assert DataReservation.objects.count() == 0


def test_upload_while_another_is_running_at_uploading_limit_is_413(
    owner, queued, make_image, settings
):
    settings.QUOTA_IMAGE_COUNT_UPLOADING = 1
    make_image(status="saving")

    response = put_data(owner, queued, b"data")

    assert response.status_code == 413
    assert response.json() == glance_error(
        413, over_limit(owner.project_id, "image_count_uploading", 1, 2, 0)
    )
    assert reloaded(queued).status == "queued"


def test_upload_under_uploading_limit_is_accepted(owner, queued, settings):
    settings.QUOTA_IMAGE_COUNT_UPLOADING = 1

    assert put_data(owner, queued, b"data").status_code == 204


def test_legacy_storage_quota_counts_running_uploads(owner, queued, make_image, settings):
    settings.USER_STORAGE_QUOTA = 100
    running = make_image(status="saving", write_attempt="a1")
    DataReservation.objects.create(
        image=running, attempt="a1", owner=owner.project_id, area="store", size=80
    )

    response = put_data(owner, queued, b"x" * 26)

    assert response.status_code == 413
    assert response.json() == glance_error(
        413,
        "Image exceeds the storage quota: The size of the data 26 will exceed the limit. "
        "20 bytes remaining.",
    )
    assert reloaded(queued).status == "queued"


# --- image_stage_total: stage -------------------------------------------------------------------


def test_stage_announced_over_stage_total_is_413(owner, queued, settings):
    settings.QUOTA_IMAGE_STAGE_TOTAL = 1

    response = put_data(owner, queued, b"s" * (2 * MIB), "stage")

    assert response.status_code == 413
    assert response.json() == glance_error(
        413, over_limit(owner.project_id, "image_stage_total", 1, 0, 2)
    )
    assert reloaded(queued).status == "queued"
    assert not StagedData.objects.exists()


def test_stage_without_size_stops_at_stage_total(owner, queued, settings):
    settings.QUOTA_IMAGE_STAGE_TOTAL = 1

    response = put_data(owner, queued, b"", "stage", **unsized(b"s" * (MIB + 1)))

    assert response.status_code == 413
    assert response.json() == glance_error(
        413, over_limit(owner.project_id, "image_stage_total", 1, 0, 2)
    )
    assert reloaded(queued).status == "queued"
    assert not StagedData.objects.exists()
    assert DataReservation.objects.count() == 0


def test_stage_counts_against_uploading_limit(owner, queued, make_image, settings):
    settings.QUOTA_IMAGE_COUNT_UPLOADING = 1
    make_image(status="uploading")

    response = put_data(owner, queued, b"data", "stage")

    assert response.status_code == 413
    assert reloaded(queued).status == "queued"


def test_legacy_storage_quota_does_not_bound_staging(owner, queued, settings):
    settings.USER_STORAGE_QUOTA = 10

    assert put_data(owner, queued, b"x" * 26, "stage").status_code == 204


# --- import --------------------------------------------------------------------------------


def test_import_while_over_size_total_is_413(owner, queued, make_image, settings):
    put_data(owner, queued, b"data", "stage")
    stored(make_image, 2 * MIB, "fast")
    settings.QUOTA_IMAGE_SIZE_TOTAL = 1

    response = start_import(owner, queued, GLANCE_DIRECT)

    assert response.status_code == 413
    assert response.json() == glance_error(
        413, over_limit(owner.project_id, "image_size_total", 1, 2, 0)
    )
    assert reloaded(queued).status == "uploading"
    assert not Task.objects.exists()


def test_glance_direct_import_passing_size_total_fails_its_task(owner, queued, settings):
    put_data(owner, queued, b"i" * (2 * MIB), "stage")
    settings.QUOTA_IMAGE_SIZE_TOTAL = 1

    response = start_import(owner, queued, GLANCE_DIRECT)

    # As Glance: accepted, then refused by the task once the image is marked importing.
    assert response.status_code == 202
    task = Task.objects.get(image_id=queued.id)
    assert (task.status, task.message) == (
        "failure",
        over_limit(owner.project_id, "image_size_total", 1, 0, 2),
    )
    row = reloaded(queued)
    assert row.status == "uploading"  # staged data kept: the import can be retried
    assert not ImageLocation.objects.filter(image=queued).exists()


def test_web_download_at_uploading_limit_fails_its_task_before_fetching(owner, queued, settings):
    # Nothing listens there: the task must fail on the quota, not on the fetch.
    settings.IMPORT_ALLOWED_HOSTS, settings.IMPORT_ALLOWED_PORTS = ["127.0.0.1"], ["9"]
    settings.QUOTA_IMAGE_COUNT_UPLOADING = 0
    body = {"method": {"name": "web-download", "uri": "http://127.0.0.1:9/image"}}

    response = start_import(owner, queued, body)

    assert response.status_code == 202
    task = Task.objects.get(image_id=queued.id)
    assert (task.status, task.message) == (
        "failure",
        over_limit(owner.project_id, "image_count_uploading", 0, 1, 0),
    )
    assert reloaded(queued).status == "queued"


def test_copy_image_at_uploading_limit_fails_its_task_and_copies_nothing(
    admin, owner, make_image, settings, tmp_path
):
    settings.ENABLED_BACKENDS = {"fast": str(tmp_path / "fast"), "cheap": str(tmp_path / "cheap")}
    settings.DEFAULT_BACKEND = "fast"
    image = make_image(disk_format="raw", container_format="bare")
    assert put_data(admin, image, b"copy me").status_code == 204
    settings.QUOTA_IMAGE_COUNT_UPLOADING = 0

    response = start_import(admin, image, {"method": {"name": "copy-image"}, "stores": ["cheap"]})

    assert response.status_code == 202
    task = Task.objects.get(image_id=image.id)
    # The image owner's quota: an image being copied counts as uploading.
    assert task.message == over_limit(owner.project_id, "image_count_uploading", 0, 1, 0)
    row = reloaded(image)
    assert row.status == "active"
    assert list(row.locations.values_list("store", flat=True)) == ["fast"]
    assert not (tmp_path / "cheap" / image.id).exists()


def test_usage_takes_only_get_and_other_methods_are_404_as_in_glance(owner):
    client = owner.client()

    assert client.post("/v2/info/usage", HTTP_ACCEPT=JSON).status_code == 404
    assert client.delete("/v2/info/usage", HTTP_ACCEPT=JSON).status_code == 404
    # No body check on this route in Glance.
    with_body = client.generic("GET", "/v2/info/usage", b"{}", "application/json")
    assert with_body.status_code == 200


def test_usage_is_503_when_keystones_limits_cannot_be_read(owner, settings):
    settings.USE_KEYSTONE_LIMITS = True
    # Nothing listens there.
    settings.OSLO_LIMIT = {
        "auth_url": "http://127.0.0.1:9/v3",
        "username": "glance",
        "password": "secret",
        "project_name": "service",
        "user_domain_name": "Default",
        "project_domain_name": "Default",
        "endpoint_id": "e1",
    }
    keystone_limits.forget()
    try:
        response = owner.client().get("/v2/info/usage", HTTP_ACCEPT=JSON)
    finally:
        keystone_limits.forget()

    assert response.status_code == 503
    assert response.json()["message"].startswith(
        "The project's limits could not be read from Keystone: "
    )


def test_a_write_resuming_after_a_stall_takes_its_room_again(owner, make_image, settings):
    """Silent for UPLOAD_STALE_SECONDS its reservation stopped counting, and another write
    took the room: what it held before is no longer its to write."""
    settings.USER_STORAGE_QUOTA = 100
    stalled = make_image(status="saving", write_attempt="a1")
    room = quotas.Reservation(stalled, "a1", "store")
    room.make_room(60, exact=True)
    Image.objects.filter(pk=stalled.pk).update(updated_at=stalled.updated_at.replace(year=2000))
    other = make_image(status="saving", write_attempt="b1")
    quotas.Reservation(other, "b1", "store").make_room(80, exact=True)
    room.confirmed_at -= settings.UPLOAD_STALE_SECONDS

    with pytest.raises(GlanceError) as refused:
        room.make_room(30)

    assert refused.value.status_code == 413


@pytest.fixture
def served_image(settings) -> Iterator[str]:
    """A URL on loopback serving 2 MiB, allowed for web-download."""
    data = b"w" * (2 * MIB)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.IMPORT_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.IMPORT_ALLOWED_PORTS = [str(server.server_address[1])]
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/image"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_web_download_stops_at_stage_total_and_fails_its_task(
    owner, queued, served_image, settings
):
    settings.QUOTA_IMAGE_STAGE_TOTAL = 1

    response = start_import(
        owner, queued, {"method": {"name": "web-download", "uri": served_image}}
    )

    assert response.status_code == 202
    task = Task.objects.get(image_id=queued.id)
    assert task.status == "failure"
    assert task.message == f"Downloading {served_image} failed: " + over_limit(
        owner.project_id, "image_stage_total", 1, 0, 2
    )
    assert reloaded(queued).status == "queued"
    assert not StagedData.objects.exists()
    assert DataReservation.objects.count() == 0


def test_web_download_within_stage_total_activates_and_releases_its_room(
    owner, queued, served_image, settings
):
    settings.QUOTA_IMAGE_STAGE_TOTAL = 2

    response = start_import(
        owner, queued, {"method": {"name": "web-download", "uri": served_image}}
    )

    assert response.status_code == 202
    assert reloaded(queued).status == "active"
    assert DataReservation.objects.count() == 0
    assert usage_of(owner)["image_stage_total"] == {"limit": 2, "usage": 0}


def test_a_running_web_downloads_reservation_counts_as_staged(owner, queued, make_image):
    queued.status = "importing"
    queued.save()
    task = Task.objects.create(
        type="api_image_import",
        owner=owner.project_id,
        image_id=queued.id,
        status="processing",
        heartbeat_at=timezone.now(),
        input={},
    )
    DataReservation.objects.create(
        image=queued, task=task, attempt="t1", owner=owner.project_id, area="staging", size=3 * MIB
    )

    assert usage_of(owner)["image_stage_total"]["usage"] == 3

    Task.objects.filter(pk=task.pk).update(status="failure")

    assert usage_of(owner)["image_stage_total"]["usage"] == 0
