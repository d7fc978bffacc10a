"""/v2/images/{id}/members and /members/{member_id}: image sharing (glance-api-v2.md §10)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django.test import override_settings

from images.models import Image, ImageMember
from tests.support import JSON, glance_error

LONG_AGO = datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
SHARED_AT = datetime(2024, 5, 6, 7, 8, 9, 654321, tzinfo=UTC)
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def member_body(image: Image, member_id: str, status: str, created="2024-05-06T07:08:09Z"):
    return {
        "member_id": member_id,
        "image_id": image.id,
        "status": status,
        "created_at": created,
        "updated_at": created,
        "schema": "/v2/schemas/member",
    }


def statuses(image: Image) -> dict[str, str]:
    return dict(ImageMember.objects.filter(image=image).values_list("member_id", "status"))


def post_member(persona, image_id, body):
    return persona.client().post(
        f"/v2/images/{image_id}/members", body, format="json", HTTP_ACCEPT=JSON
    )


def put_member(persona, image_id, member_id, body):
    return persona.client().put(
        f"/v2/images/{image_id}/members/{member_id}", body, format="json", HTTP_ACCEPT=JSON
    )


@pytest.fixture
def share(make_image):
    """A shared image of project A with the given members, all shared at SHARED_AT."""

    def make(members=None, **fields):
        fields.setdefault("visibility", "shared")
        fields.setdefault("status", "active")
        image = make_image(
            members=members or {}, created_at=LONG_AGO, updated_at=LONG_AGO, **fields
        )
        ImageMember.objects.filter(image=image).update(created_at=SHARED_AT, updated_at=SHARED_AT)
        return image

    return make


@pytest.fixture
def image(share, member):
    return share({member.project_id: "pending"})


# --- POST /members --------------------------------------------------------------------------


def test_member_add_returns_pending_member(owner, share, member):
    image = share()

    response = post_member(owner, image.id, {"member": member.project_id})

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    row = ImageMember.objects.get(image=image, member_id=member.project_id)
    body = response.json()
    assert body == {
        "member_id": member.project_id,
        "image_id": image.id,
        "status": "pending",
        "created_at": row.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "updated_at": row.updated_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "schema": "/v2/schemas/member",
    }
    assert TIMESTAMP.match(body["created_at"])
    assert TIMESTAMP.match(body["updated_at"])
    assert row.status == "pending"


def test_member_add_leaves_image_updated_at(owner, share, member):
    image = share()

    post_member(owner, image.id, {"member": member.project_id})

    assert Image.objects.get(pk=image.pk).updated_at == LONG_AGO


def test_member_add_by_admin_is_200(admin, share, member):
    image = share()

    response = post_member(admin, image.id, {"member": member.project_id})

    assert response.status_code == 200
    assert statuses(image) == {member.project_id: "pending"}


def test_member_add_accepts_any_project_id(owner, share):
    image = share()

    response = post_member(owner, image.id, {"member": "no-such-project"})

    assert response.status_code == 200
    assert statuses(image) == {"no-such-project": "pending"}


@pytest.mark.parametrize("visibility", ["private", "public", "community"])
def test_member_add_to_non_shared_image_is_403(owner, share, member, visibility):
    image = share(visibility=visibility)

    response = post_member(owner, image.id, {"member": member.project_id})

    assert response.status_code == 403
    assert response.json() == glance_error(
        403, f"Not allowed to create members for image {image.id}."
    )
    assert statuses(image) == {}


def test_member_add_duplicate_is_409(owner, image, member):
    response = post_member(owner, image.id, {"member": member.project_id})

    assert response.status_code == 409
    assert response.json() == glance_error(
        409, f"Member {member.project_id} is duplicated for image {image.id}"
    )
    assert ImageMember.objects.filter(image=image).count() == 1


@override_settings(IMAGE_MEMBER_QUOTA=2)
def test_member_add_over_quota_is_413(owner, share):
    image = share({"project-x": "pending", "project-y": "accepted"})

    response = post_member(owner, image.id, {"member": "project-z"})

    assert response.status_code == 413
    assert response.json()["code"] == "413 Request Entity Too Large"
    assert statuses(image) == {"project-x": "pending", "project-y": "accepted"}


@override_settings(IMAGE_MEMBER_QUOTA=2)
def test_member_add_over_quota_message(owner, share):
    image = share({"project-x": "pending", "project-y": "accepted"})

    response = post_member(owner, image.id, {"member": "project-z"})

    assert response.json() == glance_error(
        413,
        f"Image member limit exceeded for image {image.id}: The limit has been exceeded on the "
        "number of allowed image members for this image. Attempted: 3, Maximum: 2:",
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "Body expected in request."),
        ("{not json", "Malformed JSON in request body."),
        ('"someone"', "Unexpected body type. Expected list/dict."),
        ("[]", 'Expected a member in the form: {"member": "image_id"}'),
        ("{}", "Member to be added not specified"),
        ('{"member_id": "someone"}', "Member to be added not specified"),
        ('{"member": ""}', "Member can't be empty"),
    ],
)
def test_member_add_body_error_is_400(owner, share, raw, message):
    image = share()

    response = owner.client().post(
        f"/v2/images/{image.id}/members", data=raw, content_type=JSON, HTTP_ACCEPT=JSON
    )

    assert response.status_code == 400
    assert response.json() == glance_error(400, message)
    assert statuses(image) == {}


@pytest.mark.parametrize("persona", ["member", "reader"])
def test_member_add_by_non_owner_is_403(request, persona, image):
    caller = request.getfixturevalue(persona)

    response = post_member(caller, image.id, {"member": "project-z"})

    assert response.status_code == 403
    assert response.json() == glance_error(
        403, "You are not authorized to complete add_member action."
    )
    assert "project-z" not in statuses(image)


def test_member_add_invisible_image_is_404(outsider, image):
    response = post_member(outsider, image.id, {"member": "project-z"})

    assert response.status_code == 404
    assert response.json()["code"] == "404 Not Found"
    assert "project-z" not in statuses(image)


def test_member_add_invisible_image_message(outsider, image):
    response = post_member(outsider, image.id, {"member": "project-z"})

    assert response.json() == glance_error(404, f"Image {image.id} not found.")


# --- GET /members ---------------------------------------------------------------------------


@pytest.fixture
def two_members(share, member, outsider):
    image = share({member.project_id: "accepted"})
    ImageMember.objects.create(
        image=image,
        member_id=outsider.project_id,
        created_at=datetime(2024, 5, 7, 0, 0, 0, tzinfo=UTC),
        updated_at=datetime(2024, 5, 8, 0, 0, 0, tzinfo=UTC),
    )
    return image


@pytest.mark.parametrize("persona", ["owner", "reader", "admin"])
def test_members_list_by_owner_project_or_admin_shows_all(
    member, outsider, request, persona, two_members
):
    image = two_members
    caller = request.getfixturevalue(persona)

    response = caller.client().get(f"/v2/images/{image.id}/members")

    assert response.status_code == 200
    assert response.json() == {
        "members": [
            member_body(image, member.project_id, "accepted"),
            {
                **member_body(
                    image, outsider.project_id, "pending", created="2024-05-07T00:00:00Z"
                ),
                "updated_at": "2024-05-08T00:00:00Z",
            },
        ],
        "schema": "/v2/schemas/members",
    }


def test_members_list_by_member_shows_only_own(member, two_members):
    image = two_members

    response = member.client().get(f"/v2/images/{image.id}/members")

    assert response.status_code == 200
    assert response.json() == {
        "members": [member_body(image, member.project_id, "accepted")],
        "schema": "/v2/schemas/members",
    }


def test_members_list_without_members_is_empty(owner, share):
    image = share()

    response = owner.client().get(f"/v2/images/{image.id}/members")

    assert response.json() == {"members": [], "schema": "/v2/schemas/members"}


@pytest.mark.parametrize("visibility", ["private", "public", "community"])
def test_members_list_on_non_shared_image_is_403(owner, share, visibility):
    image = share(visibility=visibility)

    response = owner.client().get(f"/v2/images/{image.id}/members", HTTP_ACCEPT=JSON)

    assert response.status_code == 403
    assert "Only shared images have members." in response.json()["message"]


@pytest.mark.parametrize("visibility", ["public", "community"])
def test_members_list_on_someone_elses_non_shared_image_is_403(outsider, share, visibility):
    image = share(visibility=visibility)

    response = outsider.client().get(f"/v2/images/{image.id}/members", HTTP_ACCEPT=JSON)

    assert response.status_code == 403
    assert "Only shared images have members." in response.json()["message"]


def test_members_list_on_non_shared_image_message(owner, share):
    image = share(visibility="private")

    response = owner.client().get(f"/v2/images/{image.id}/members", HTTP_ACCEPT=JSON)

    assert response.json() == glance_error(
        403,
        f"Not allowed to list members for image {image.id}: Only shared images have members.",
    )


def test_members_list_invisible_image_is_404(outsider, image):
    response = outsider.client().get(f"/v2/images/{image.id}/members", HTTP_ACCEPT=JSON)

    assert response.status_code == 404
    assert response.json()["code"] == "404 Not Found"


def test_members_list_invisible_image_message(outsider, image):
    response = outsider.client().get(f"/v2/images/{image.id}/members", HTTP_ACCEPT=JSON)

    assert response.json() == glance_error(404, f"Image {image.id} not found.")


def test_members_list_with_body_is_400(owner, image):
    response = owner.client().generic(
        "GET", f"/v2/images/{image.id}/members", data="{}", content_type=JSON, HTTP_ACCEPT=JSON
    )

    assert response.status_code == 400
    assert response.json() == glance_error(400, "A body is not expected with this request.")


# --- GET /members/{member_id} ---------------------------------------------------------------


@pytest.mark.parametrize("persona", ["owner", "reader", "member", "admin"])
def test_member_show_for_owner_project_the_member_or_admin(member, request, persona, image):
    caller = request.getfixturevalue(persona)

    response = caller.client().get(f"/v2/images/{image.id}/members/{member.project_id}")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == member_body(image, member.project_id, "pending")


def test_member_show_other_members_entry_is_404(outsider, member, two_members):
    response = member.client().get(
        f"/v2/images/{two_members.id}/members/{outsider.project_id}", HTTP_ACCEPT=JSON
    )

    assert response.status_code == 404
    assert response.json()["code"] == "404 Not Found"


def test_member_show_other_members_entry_message(outsider, member, two_members):
    response = member.client().get(
        f"/v2/images/{two_members.id}/members/{outsider.project_id}", HTTP_ACCEPT=JSON
    )

    assert response.json() == glance_error(
        404, f"{outsider.project_id} not found in the member list of the image {two_members.id}."
    )


def test_member_show_invisible_image_is_404(member, outsider, image):
    response = outsider.client().get(
        f"/v2/images/{image.id}/members/{member.project_id}", HTTP_ACCEPT=JSON
    )

    assert response.status_code == 404
    assert response.json()["code"] == "404 Not Found"


def test_member_show_invisible_image_message(member, outsider, image):
    response = outsider.client().get(
        f"/v2/images/{image.id}/members/{member.project_id}", HTTP_ACCEPT=JSON
    )

    assert response.json() == glance_error(404, f"Image {image.id} not found.")


def test_member_show_unknown_member_is_404(owner, image):
    response = owner.client().get(f"/v2/images/{image.id}/members/project-z", HTTP_ACCEPT=JSON)

    assert response.status_code == 404
    assert response.json()["code"] == "404 Not Found"


def test_member_show_unknown_member_message(owner, image):
    response = owner.client().get(f"/v2/images/{image.id}/members/project-z", HTTP_ACCEPT=JSON)

    assert response.json() == glance_error(
        404, f"project-z not found in the member list of the image {image.id}."
    )


def test_member_show_on_non_shared_image_is_404(member, owner, share):
    image = share({member.project_id: "accepted"}, visibility="private")

    response = owner.client().get(
        f"/v2/images/{image.id}/members/{member.project_id}", HTTP_ACCEPT=JSON
    )

    assert response.status_code == 404
    assert response.json() == glance_error(404, "Only shared images have members.")


def test_member_show_with_body_is_400(member, owner, image):
    response = owner.client().generic(
        "GET",
        f"/v2/images/{image.id}/members/{member.project_id}",
        data="{}",
        content_type=JSON,
        HTTP_ACCEPT=JSON,
    )

    assert response.status_code == 400
    assert response.json() == glance_error(400, "A body is not expected with this request.")


# --- PUT /members/{member_id} ---------------------------------------------------------------


@pytest.mark.parametrize("status", ["accepted", "rejected", "pending"])
def test_member_status_change_by_member(member, image, status):
    response = put_member(member, image.id, member.project_id, {"status": status})

    assert response.status_code == 200
    row = ImageMember.objects.get(image=image, member_id=member.project_id)
    assert response.json() == {
        **member_body(image, member.project_id, status),
        "updated_at": row.updated_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    assert row.status == status
    assert row.created_at == SHARED_AT
    assert row.updated_at > SHARED_AT
    assert Image.objects.get(pk=image.pk).updated_at == LONG_AGO


def test_member_status_change_by_admin_is_200(member, admin, image):
    response = put_member(admin, image.id, member.project_id, {"status": "accepted"})

    assert response.status_code == 200
    assert statuses(image) == {member.project_id: "accepted"}


def test_member_status_change_by_owner_is_403(member, owner, image):
    response = put_member(owner, image.id, member.project_id, {"status": "accepted"})

    assert response.status_code == 403
    assert response.json() == glance_error(
        403, "You are not authorized to complete modify_member action."
    )
    assert statuses(image) == {member.project_id: "pending"}


def test_member_status_bad_value_is_400(member, image):
    response = put_member(member, image.id, member.project_id, {"status": "maybe"})

    assert response.status_code == 400
    assert response.json() == glance_error(
        400, 'Incorrect request: Status must be "pending", "accepted" or "rejected".'
    )
    assert statuses(image) == {member.project_id: "pending"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "Body expected in request."),
        ("{not json", "Malformed JSON in request body."),
        ("[]", 'Expected a status in the form: {"status": "status"}'),
        ("{}", "Status not specified"),
    ],
)
def test_member_status_body_error_is_400(member, image, raw, message):
    response = member.client().put(
        f"/v2/images/{image.id}/members/{member.project_id}",
        data=raw,
        content_type=JSON,
        HTTP_ACCEPT=JSON,
    )

    assert response.status_code == 400
    assert response.json() == glance_error(400, message)
    assert statuses(image) == {member.project_id: "pending"}


def test_member_status_change_on_non_shared_image_is_403(member, share):
    image = share(visibility="public")

    response = put_member(member, image.id, member.project_id, {"status": "accepted"})

    assert response.status_code == 403
    assert response.json() == glance_error(
        403, f"Not allowed to update members for image {image.id}."
    )
    assert statuses(image) == {}


def test_member_status_change_of_other_member_is_404(outsider, member, two_members):
    response = put_member(member, two_members.id, outsider.project_id, {"status": "accepted"})

    assert response.status_code == 404
    assert response.json() == glance_error(
        404, f"{outsider.project_id} not found in the member list of the image {two_members.id}."
    )
    assert statuses(two_members)[outsider.project_id] == "pending"


def test_member_status_change_invisible_image_is_404(member, outsider, image):
    response = put_member(outsider, image.id, outsider.project_id, {"status": "accepted"})

    assert response.status_code == 404
    assert response.json()["code"] == "404 Not Found"
    assert statuses(image) == {member.project_id: "pending"}


def test_member_status_change_invisible_image_message(outsider, image):
    response = put_member(outsider, image.id, outsider.project_id, {"status": "accepted"})

    assert response.json() == glance_error(404, f"Image {image.id} not found.")


# --- DELETE /members/{member_id} ------------------------------------------------------------


def test_member_delete_by_owner_removes_row(member, owner, image):
    response = owner.client().delete(f"/v2/images/{image.id}/members/{member.project_id}")

    assert response.status_code == 204
    assert response.content == b""
    assert statuses(image) == {}
    assert Image.objects.get(pk=image.pk).updated_at == LONG_AGO


def test_member_delete_revokes_access_at_once(owner, member, image):
    owner.client().delete(f"/v2/images/{image.id}/members/{member.project_id}")

    response = member.client().get(f"/v2/images/{image.id}", HTTP_ACCEPT=JSON)

    assert response.status_code == 404
    assert response.json() == glance_error(404, f"No image found with ID {image.id}")


def test_member_delete_by_admin_is_204(member, admin, image):
    response = admin.client().delete(f"/v2/images/{image.id}/members/{member.project_id}")

    assert response.status_code == 204
    assert statuses(image) == {}


@pytest.mark.parametrize("persona", ["member", "reader"])
def test_member_delete_by_non_owner_is_403(member, request, persona, image):
    caller = request.getfixturevalue(persona)

    response = caller.client().delete(
        f"/v2/images/{image.id}/members/{member.project_id}", HTTP_ACCEPT=JSON
    )

    assert response.status_code == 403
    assert response.json() == glance_error(
        403, "You are not authorized to complete delete_member action."
    )
    assert statuses(image) == {member.project_id: "pending"}


def test_member_delete_on_non_shared_image_is_403(member, owner, share):
    image = share({member.project_id: "accepted"}, visibility="private")

    response = owner.client().delete(
        f"/v2/images/{image.id}/members/{member.project_id}", HTTP_ACCEPT=JSON
    )

    assert response.status_code == 403
    assert response.json() == glance_error(
        403, f"Not allowed to delete members for image {image.id}."
    )
    assert statuses(image) == {member.project_id: "accepted"}


def test_member_delete_unknown_member_is_404(member, owner, image):
    response = owner.client().delete(f"/v2/images/{image.id}/members/project-z", HTTP_ACCEPT=JSON)

    assert response.status_code == 404
    assert response.json()["code"] == "404 Not Found"
    assert statuses(image) == {member.project_id: "pending"}


def test_member_delete_unknown_member_message(owner, image):
    response = owner.client().delete(f"/v2/images/{image.id}/members/project-z", HTTP_ACCEPT=JSON)

    assert response.json() == glance_error(
        404, f"project-z not found in the member list of the image {image.id}."
    )


def test_member_delete_invisible_image_is_404(member, outsider, image):
    response = outsider.client().delete(
        f"/v2/images/{image.id}/members/{member.project_id}", HTTP_ACCEPT=JSON
    )

    assert response.status_code == 404
    assert response.json()["code"] == "404 Not Found"
    assert statuses(image) == {member.project_id: "pending"}


def test_member_delete_invisible_image_message(member, outsider, image):
    response = outsider.client().delete(
        f"/v2/images/{image.id}/members/{member.project_id}", HTTP_ACCEPT=JSON
    )

    assert response.json() == glance_error(404, f"Image {image.id} not found.")


def test_member_delete_with_body_is_400(member, owner, image):
    response = owner.client().delete(
        f"/v2/images/{image.id}/members/{member.project_id}",
        data="{}",
        content_type=JSON,
        HTTP_ACCEPT=JSON,
    )

    assert response.status_code == 400
    assert response.json() == glance_error(400, "A body is not expected with this request.")
    assert statuses(image) == {member.project_id: "pending"}


# --- what membership grants -----------------------------------------------------------------


@pytest.mark.parametrize("status", ["pending", "accepted", "rejected"])
def test_member_can_read_shared_image_in_any_status(member, share, status):
    image = share({member.project_id: status})

    response = member.client().get(f"/v2/images/{image.id}")

    assert response.status_code == 200
    assert response.json()["id"] == image.id


def test_member_added_through_api_can_read_at_once(owner, member, share):
    image = share()
    post_member(owner, image.id, {"member": member.project_id})

    response = member.client().get(f"/v2/images/{image.id}")

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("status", "listed"), [("pending", False), ("rejected", False), ("accepted", True)]
)
def test_member_lists_shared_image_only_when_accepted(member, share, status, listed):
    image = share({member.project_id: status})

    response = member.client().get("/v2/images")

    assert response.status_code == 200
    assert (image.id in [i["id"] for i in response.json()["images"]]) is listed


def test_member_accepting_through_api_lists_image(member, image):
    client = member.client()
    client.put(
        f"/v2/images/{image.id}/members/{member.project_id}", {"status": "accepted"}, format="json"
    )

    response = client.get("/v2/images")

    assert [i["id"] for i in response.json()["images"]] == [image.id]


def test_private_image_member_row_grants_nothing(member, share):
    image = share({member.project_id: "accepted"}, visibility="private")

    response = member.client().get(f"/v2/images/{image.id}", HTTP_ACCEPT=JSON)

    assert response.status_code == 404
    assert response.json() == glance_error(404, f"No image found with ID {image.id}")


def test_member_id_with_a_4_byte_character_is_400_and_not_added(owner, share):
    image = share()

    response = post_member(owner, image.id, {"member": "project-🚀"})

    assert response.status_code == 400
    assert response.json() == glance_error(400, "Member can't contain 4 byte unicode characters.")
    assert statuses(image) == {}
