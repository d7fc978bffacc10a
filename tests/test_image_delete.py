"""DELETE /v2/images/{id} (glance-api-v2.md §5.5)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from images.models import Image, ImageMember, ImageProperty, ImageTag
from tests.support import JSON, glance_error, reloaded

LONG_AGO = datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
MISSING_ID = "00000000-0000-4000-8000-000000000000"
DELETABLE_STATUSES = [
    "queued",
    "saving",
    "uploading",
    "importing",
    "active",
    "deactivated",
    "killed",
]


@pytest.fixture
def image(make_image, member):
    return make_image(
        visibility="shared",
        status="active",
        properties={"os_distro": "debian"},
        tags=["web"],
        members={member.project_id: "accepted"},
        created_at=LONG_AGO,
        updated_at=LONG_AGO,
    )


def test_delete_image_soft_deletes_record(owner, image):
    response = owner.client().delete(f"/v2/images/{image.id}")

    assert response.status_code == 204
    assert response.content == b""
    row = reloaded(image)
    assert (row.deleted, row.status) == (True, "deleted")
    assert row.deleted_at is not None
    assert row.updated_at > LONG_AGO


def test_delete_image_removes_tags_properties_and_members(owner, image):
    owner.client().delete(f"/v2/images/{image.id}")

    assert not ImageTag.objects.filter(image=image).exists()
    assert not ImageProperty.objects.filter(image=image).exists()
    assert not ImageMember.objects.filter(image=image).exists()


@pytest.mark.parametrize("status", DELETABLE_STATUSES)
def test_delete_image_from_any_visible_status(owner, make_image, status):
    image = make_image(status=status)

    response = owner.client().delete(f"/v2/images/{image.id}")

    assert response.status_code == 204
    assert (reloaded(image).deleted, reloaded(image).status) == (True, "deleted")


def test_delete_then_get_is_404(owner, image):
    client = owner.client()
    client.delete(f"/v2/images/{image.id}")

    response = client.get(f"/v2/images/{image.id}", HTTP_ACCEPT=JSON)

    assert response.status_code == 404
    assert response.json() == glance_error(404, f"No image found with ID {image.id}")


def test_delete_then_member_get_is_404(owner, member, image):
    owner.client().delete(f"/v2/images/{image.id}")

    response = member.client().get(f"/v2/images/{image.id}", HTTP_ACCEPT=JSON)

    assert response.status_code == 404


def test_delete_image_leaves_list(owner, image):
    client = owner.client()
    client.delete(f"/v2/images/{image.id}")

    response = client.get("/v2/images")

    assert response.json()["images"] == []


def test_delete_id_refused_on_recreate(owner, image):
    client = owner.client()
    client.delete(f"/v2/images/{image.id}")

    response = client.post("/v2/images", {"id": image.id}, format="json", HTTP_ACCEPT=JSON)

    assert response.status_code == 409
    assert response.json()["code"] == "409 Conflict"
    assert Image.objects.filter(pk=image.pk).count() == 1
    assert reloaded(image).deleted is True


def test_delete_id_refused_on_recreate_message(owner, image):
    client = owner.client()
    client.delete(f"/v2/images/{image.id}")

    response = client.post("/v2/images", {"id": image.id}, format="json", HTTP_ACCEPT=JSON)

    assert response.json() == glance_error(409, f"Image ID {image.id} already exists!")


def test_delete_protected_image_is_403(owner, make_image):
    image = make_image(protected=True, status="active")

    response = owner.client().delete(f"/v2/images/{image.id}", HTTP_ACCEPT=JSON)

    assert response.status_code == 403
    assert response.json() == glance_error(
        403, f"Image {image.id} is protected and cannot be deleted."
    )
    assert (reloaded(image).deleted, reloaded(image).status) == (False, "active")


def test_delete_protected_image_by_admin_is_403(admin, make_image):
    image = make_image(protected=True)

    response = admin.client().delete(f"/v2/images/{image.id}", HTTP_ACCEPT=JSON)

    assert response.status_code == 403
    assert reloaded(image).deleted is False


def test_delete_by_admin_of_other_project(admin, image):
    response = admin.client().delete(f"/v2/images/{image.id}")

    assert response.status_code == 204
    assert reloaded(image).deleted is True


@pytest.mark.parametrize(
    ("persona", "visibility"),
    [
        ("reader", "private"),
        ("member", "shared"),
        ("outsider", "public"),
        ("outsider", "community"),
    ],
)
def test_delete_by_caller_who_sees_but_may_not_delete_is_403(
    request, make_image, member, persona, visibility
):
    image = make_image(visibility=visibility, members={member.project_id: "accepted"})
    caller = request.getfixturevalue(persona)

    response = caller.client().delete(f"/v2/images/{image.id}", HTTP_ACCEPT=JSON)

    assert response.status_code == 403
    assert response.json() == glance_error(
        403, "You are not authorized to complete delete_image action."
    )
    assert reloaded(image).deleted is False


@pytest.mark.parametrize(
    ("persona", "fields"),
    [
        ("outsider", {"visibility": "private"}),
        ("outsider", {"visibility": "shared"}),
        ("owner", {"status": "deleted", "deleted": True}),
    ],
)
def test_delete_invisible_image_is_404(request, make_image, persona, fields):
    image = make_image(**fields)
    caller = request.getfixturevalue(persona)

    response = caller.client().delete(f"/v2/images/{image.id}", HTTP_ACCEPT=JSON)

    assert response.status_code == 404
    assert response.json() == glance_error(404, f"Failed to find image {image.id} to delete")
    assert reloaded(image).deleted is fields.get("deleted", False)


def test_delete_missing_image_is_404(owner):
    response = owner.client().delete(f"/v2/images/{MISSING_ID}", HTTP_ACCEPT=JSON)

    assert response.status_code == 404
    assert response.json() == glance_error(404, f"Failed to find image {MISSING_ID} to delete")


def test_delete_twice_is_404(owner, image):
    client = owner.client()
    client.delete(f"/v2/images/{image.id}")

    response = client.delete(f"/v2/images/{image.id}", HTTP_ACCEPT=JSON)

    assert response.status_code == 404
    assert response.json() == glance_error(404, f"Failed to find image {image.id} to delete")


def test_delete_with_body_is_400(owner, image):
    response = owner.client().delete(
        f"/v2/images/{image.id}", data="{}", content_type=JSON, HTTP_ACCEPT=JSON
    )

    assert response.status_code == 400
    assert response.json() == glance_error(400, "A body is not expected with this request.")
    assert reloaded(image).deleted is False
