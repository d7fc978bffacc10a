"""PUT / DELETE /v2/images/{id}/tags/{tag} (glance-api-v2.md §9)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.test import override_settings

from images.models import Image, ImageTag
from tests.support import JSON, glance_error

LONG_AGO = datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)


def tags_of(image: Image) -> list[str]:
    return sorted(ImageTag.objects.filter(image=image).values_list("value", flat=True))


def updated_at_of(image: Image) -> datetime:
    return Image.objects.get(pk=image.pk).updated_at


@pytest.fixture
def image(make_image, member):
    return make_image(
        visibility="shared",
        status="active",
        tags=["existing"],
        members={member.project_id: "accepted"},
        created_at=LONG_AGO,
        updated_at=LONG_AGO,
    )


# --- PUT ------------------------------------------------------------------------------------


def test_tag_add_stores_tag_and_moves_updated_at(owner, image):
    response = owner.client().put(f"/v2/images/{image.id}/tags/web")

    assert response.status_code == 204
    assert response.content == b""
    assert tags_of(image) == ["existing", "web"]
    assert updated_at_of(image) > LONG_AGO


def test_tag_add_shows_in_image(owner, image):
    owner.client().put(f"/v2/images/{image.id}/tags/web")

    response = owner.client().get(f"/v2/images/{image.id}")

    assert response.json()["tags"] == ["existing", "web"]


def test_tag_add_is_idempotent(owner, image):
    client = owner.client()

    first = client.put(f"/v2/images/{image.id}/tags/web")
    second = client.put(f"/v2/images/{image.id}/tags/web")

    assert (first.status_code, second.status_code) == (204, 204)
    assert ImageTag.objects.filter(image=image, value="web").count() == 1


def test_tag_add_url_decodes_tag(owner, image):
    response = owner.client().put(f"/v2/images/{image.id}/tags/two%20words")

    assert response.status_code == 204
    assert tags_of(image) == ["existing", "two words"]


def test_tag_add_accepts_255_characters(owner, image):
    tag = "t" * 255

    response = owner.client().put(f"/v2/images/{image.id}/tags/{tag}")

    assert response.status_code == 204
    assert tags_of(image) == ["existing", tag]


def test_tag_add_longer_than_255_characters_is_400(owner, image):
    tag = "t" * 256

    response = owner.client().put(f"/v2/images/{image.id}/tags/{tag}", HTTP_ACCEPT=JSON)

    assert response.status_code == 400
    body = response.json()
    # Glance appends jsonschema's multi-line explanation after this first line.
    assert body["message"].startswith(
        f"Provided object does not match schema 'image': '{tag}' is too long"
    )
    assert (body["code"], body["title"]) == ("400 Bad Request", "Bad Request")
    assert tags_of(image) == ["existing"]
    assert updated_at_of(image) == LONG_AGO


@override_settings(IMAGE_TAG_QUOTA=2)
def test_tag_add_over_quota_is_413(owner, make_image):
    image = make_image(tags=["a", "b"], updated_at=LONG_AGO)

    response = owner.client().put(f"/v2/images/{image.id}/tags/c", HTTP_ACCEPT=JSON)

    assert response.status_code == 413
    assert response.json() == glance_error(
        413,
        f"Image tag limit exceeded for image {image.id}: The limit has been exceeded on the "
        "number of allowed image tags. Attempted: 3, Maximum: 2:",
    )
    assert tags_of(image) == ["a", "b"]
    assert updated_at_of(image) == LONG_AGO


@override_settings(IMAGE_TAG_QUOTA=2)
def test_tag_add_existing_tag_at_quota_is_204(owner, make_image):
    image = make_image(tags=["a", "b"])

    response = owner.client().put(f"/v2/images/{image.id}/tags/a")

    assert response.status_code == 204
    assert tags_of(image) == ["a", "b"]


def test_tag_add_on_deactivated_image_is_204(owner, make_image):
    image = make_image(status="deactivated")

    response = owner.client().put(f"/v2/images/{image.id}/tags/web")

    assert response.status_code == 204
    assert tags_of(image) == ["web"]


def test_tag_add_by_admin_is_204(admin, image):
    response = admin.client().put(f"/v2/images/{image.id}/tags/web")

    assert response.status_code == 204
    assert tags_of(image) == ["existing", "web"]


@pytest.mark.parametrize("persona", ["member", "reader"])
def test_tag_add_by_non_owner_is_403(request, persona, image):
    caller = request.getfixturevalue(persona)

    response = caller.client().put(f"/v2/images/{image.id}/tags/web", HTTP_ACCEPT=JSON)

    assert response.status_code == 403
    assert response.json() == glance_error(
        403, "You are not authorized to complete modify_image action."
    )
    assert tags_of(image) == ["existing"]


def test_tag_add_on_someone_elses_public_image_is_403(outsider, make_image):
    image = make_image(visibility="public")

    response = outsider.client().put(f"/v2/images/{image.id}/tags/web", HTTP_ACCEPT=JSON)

    assert response.status_code == 403
    assert response.json() == glance_error(
        403, "You are not authorized to complete modify_image action."
    )
    assert tags_of(image) == []


def test_tag_add_invisible_image_is_404(outsider, image):
    response = outsider.client().put(f"/v2/images/{image.id}/tags/web", HTTP_ACCEPT=JSON)

    assert response.status_code == 404
    assert response.json()["code"] == "404 Not Found"
    assert tags_of(image) == ["existing"]


def test_tag_add_invisible_image_message_names_image(outsider, image):
    response = outsider.client().put(f"/v2/images/{image.id}/tags/web", HTTP_ACCEPT=JSON)

    assert response.json() == glance_error(404, f"Image {image.id} not found.")


def test_tag_add_deleted_image_is_404(owner, make_image):
    image = make_image(status="deleted", deleted=True)

    response = owner.client().put(f"/v2/images/{image.id}/tags/web", HTTP_ACCEPT=JSON)

    assert response.status_code == 404
    assert tags_of(image) == []


def test_tag_add_with_body_is_400(owner, image):
    response = owner.client().put(
        f"/v2/images/{image.id}/tags/web", data="{}", content_type=JSON, HTTP_ACCEPT=JSON
    )

    assert response.status_code == 400
    assert response.json() == glance_error(400, "A body is not expected with this request.")
    assert tags_of(image) == ["existing"]


# --- DELETE ---------------------------------------------------------------------------------


def test_tag_delete_removes_tag_and_moves_updated_at(owner, image):
    response = owner.client().delete(f"/v2/images/{image.id}/tags/existing")

    assert response.status_code == 204
    assert response.content == b""
    assert tags_of(image) == []
    assert updated_at_of(image) > LONG_AGO


def test_tag_delete_missing_tag_is_404(owner, image):
    response = owner.client().delete(f"/v2/images/{image.id}/tags/absent", HTTP_ACCEPT=JSON)

    assert response.status_code == 404
    assert response.json() == glance_error(404, "The resource could not be found.")
    assert tags_of(image) == ["existing"]
    assert updated_at_of(image) == LONG_AGO


@pytest.mark.parametrize("persona", ["member", "reader"])
def test_tag_delete_by_non_owner_is_403(request, persona, image):
    caller = request.getfixturevalue(persona)

    response = caller.client().delete(f"/v2/images/{image.id}/tags/existing", HTTP_ACCEPT=JSON)

    assert response.status_code == 403
    assert response.json() == glance_error(
        403, "You are not authorized to complete modify_image action."
    )
    assert tags_of(image) == ["existing"]


def test_tag_delete_invisible_image_is_404(outsider, image):
    response = outsider.client().delete(f"/v2/images/{image.id}/tags/existing", HTTP_ACCEPT=JSON)

    assert response.status_code == 404
    assert response.json()["code"] == "404 Not Found"
    assert tags_of(image) == ["existing"]


def test_tag_delete_invisible_image_message_names_image(outsider, image):
    response = outsider.client().delete(f"/v2/images/{image.id}/tags/existing", HTTP_ACCEPT=JSON)

    assert response.json() == glance_error(404, f"Image {image.id} not found.")


def test_tag_delete_with_body_is_400(owner, image):
    response = owner.client().delete(
        f"/v2/images/{image.id}/tags/existing", data="{}", content_type=JSON, HTTP_ACCEPT=JSON
    )

    assert response.status_code == 400
    assert response.json() == glance_error(400, "A body is not expected with this request.")
    assert tags_of(image) == ["existing"]


def test_tag_with_a_4_byte_character_is_400_and_not_added(owner, make_image):
    image = make_image(tags=["a"], updated_at=LONG_AGO)

    response = owner.client().put(f"/v2/images/{image.id}/tags/rocket-🚀", HTTP_ACCEPT=JSON)

    assert response.status_code == 400
    assert response.json() == glance_error(400, "Param values can't contain 4 byte unicode.")
    assert tags_of(image) == ["a"]
    assert updated_at_of(image) == LONG_AGO
