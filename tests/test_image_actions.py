"""POST /v2/images/{id}/actions/deactivate and …/reactivate (glance-api-v2.md §4.3, §5.6)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from images.models import Image
from tests.support import JSON, glance_error, reloaded

LONG_AGO = datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
NEITHER_ACTIVE_NOR_DEACTIVATED = ["queued", "saving", "uploading", "importing", "killed"]


@pytest.fixture
def image_in(make_image, member):
    """A shared image of project A (shared with `member`) in the given status."""

    def make(status: str, **fields) -> Image:
        fields.setdefault("visibility", "shared")
        return make_image(
            status=status,
            members={member.project_id: "accepted"},
            created_at=LONG_AGO,
            updated_at=LONG_AGO,
            **fields,
        )

    return make


# --- deactivate -----------------------------------------------------------------------------


def test_deactivate_active_image(owner, image_in):
    image = image_in("active")

    response = owner.client().post(f"/v2/images/{image.id}/actions/deactivate")

    assert response.status_code == 204
    assert response.content == b""
    assert reloaded(image).status == "deactivated"
    assert reloaded(image).updated_at > LONG_AGO


def test_deactivate_shows_in_image(owner, image_in):
    image = image_in("active")
    owner.client().post(f"/v2/images/{image.id}/actions/deactivate")

    response = owner.client().get(f"/v2/images/{image.id}")

    assert response.json()["status"] == "deactivated"


def test_deactivate_already_deactivated_is_noop(owner, image_in):
    image = image_in("deactivated")

    response = owner.client().post(f"/v2/images/{image.id}/actions/deactivate")

    assert response.status_code == 204
    assert reloaded(image).status == "deactivated"
    assert reloaded(image).updated_at == LONG_AGO


@pytest.mark.parametrize("status", NEITHER_ACTIVE_NOR_DEACTIVATED)
def test_deactivate_from_other_status_is_403(owner, image_in, status):
    image = image_in(status)

    response = owner.client().post(f"/v2/images/{image.id}/actions/deactivate", HTTP_ACCEPT=JSON)

    assert response.status_code == 403
    assert response.json() == glance_error(
        403, f"Not allowed to deactivate image in status '{status}'"
    )
    assert reloaded(image).status == status
    assert reloaded(image).updated_at == LONG_AGO


def test_deactivate_by_admin_of_other_project(admin, image_in):
    image = image_in("active")

    response = admin.client().post(f"/v2/images/{image.id}/actions/deactivate")

    assert response.status_code == 204
    assert reloaded(image).status == "deactivated"


@pytest.mark.parametrize(
    ("persona", "visibility"),
    [("member", "shared"), ("outsider", "public"), ("outsider", "community"), ("reader", "shared")],
)
def test_deactivate_by_non_owner_of_visible_image_is_403(request, image_in, persona, visibility):
    image = image_in("active", visibility=visibility)
    caller = request.getfixturevalue(persona)

    response = caller.client().post(f"/v2/images/{image.id}/actions/deactivate", HTTP_ACCEPT=JSON)

    assert response.status_code == 403
    assert response.json() == glance_error(
        403, "You are not authorized to complete deactivate action."
    )
    assert reloaded(image).status == "active"


@pytest.mark.parametrize(
    ("persona", "fields"),
    [
        ("outsider", {"visibility": "shared"}),
        ("outsider", {"visibility": "private"}),
        ("member", {"visibility": "private"}),
        ("owner", {"status": "deleted", "deleted": True}),
    ],
)
def test_deactivate_invisible_image_is_404(request, image_in, persona, fields):
    fields = {"status": "active", **fields}
    image = image_in(**fields)
    caller = request.getfixturevalue(persona)

    response = caller.client().post(f"/v2/images/{image.id}/actions/deactivate", HTTP_ACCEPT=JSON)

    assert response.status_code == 404
    assert response.json() == glance_error(404, f"No image found with ID {image.id}")
    assert reloaded(image).status == fields["status"]


def test_deactivate_missing_image_is_404(owner):
    response = owner.client().post(
        "/v2/images/00000000-0000-4000-8000-000000000000/actions/deactivate", HTTP_ACCEPT=JSON
    )

    assert response.status_code == 404
    assert response.json() == glance_error(
        404, "No image found with ID 00000000-0000-4000-8000-000000000000"
    )


def test_deactivate_with_body_is_400(owner, image_in):
    image = image_in("active")

    response = owner.client().post(
        f"/v2/images/{image.id}/actions/deactivate",
        data="{}",
        content_type=JSON,
        HTTP_ACCEPT=JSON,
    )

    assert response.status_code == 400
    assert response.json() == glance_error(400, "A body is not expected with this request.")
    assert reloaded(image).status == "active"


# --- reactivate -----------------------------------------------------------------------------


def test_reactivate_deactivated_image(owner, image_in):
    image = image_in("deactivated")

    response = owner.client().post(f"/v2/images/{image.id}/actions/reactivate")

    assert response.status_code == 204
    assert response.content == b""
    assert reloaded(image).status == "active"
    assert reloaded(image).updated_at > LONG_AGO


def test_reactivate_already_active_is_noop(owner, image_in):
    image = image_in("active")

    response = owner.client().post(f"/v2/images/{image.id}/actions/reactivate")

    assert response.status_code == 204
    assert reloaded(image).status == "active"
    assert reloaded(image).updated_at == LONG_AGO


@pytest.mark.parametrize("status", NEITHER_ACTIVE_NOR_DEACTIVATED)
def test_reactivate_from_other_status_is_403(owner, image_in, status):
    image = image_in(status)

    response = owner.client().post(f"/v2/images/{image.id}/actions/reactivate", HTTP_ACCEPT=JSON)

    assert response.status_code == 403
    assert response.json() == glance_error(
        403, f"Not allowed to reactivate image in status '{status}'"
    )
    assert reloaded(image).status == status
    assert reloaded(image).updated_at == LONG_AGO


def test_reactivate_by_admin_of_other_project(admin, image_in):
    image = image_in("deactivated")

    response = admin.client().post(f"/v2/images/{image.id}/actions/reactivate")

    assert response.status_code == 204
    assert reloaded(image).status == "active"


@pytest.mark.parametrize(
    ("persona", "visibility"),
    [("member", "shared"), ("outsider", "public"), ("outsider", "community"), ("reader", "shared")],
)
def test_reactivate_by_non_owner_of_visible_image_is_403(request, image_in, persona, visibility):
    image = image_in("deactivated", visibility=visibility)
    caller = request.getfixturevalue(persona)

    response = caller.client().post(f"/v2/images/{image.id}/actions/reactivate", HTTP_ACCEPT=JSON)

    assert response.status_code == 403
    assert response.json() == glance_error(
        403, "You are not authorized to complete reactivate action."
    )
    assert reloaded(image).status == "deactivated"


@pytest.mark.parametrize(
    ("persona", "fields"),
    [
        ("outsider", {"visibility": "shared"}),
        ("outsider", {"visibility": "private"}),
        ("owner", {"status": "deleted", "deleted": True}),
    ],
)
def test_reactivate_invisible_image_is_404(request, image_in, persona, fields):
    fields = {"status": "deactivated", **fields}
    image = image_in(**fields)
    caller = request.getfixturevalue(persona)

    response = caller.client().post(f"/v2/images/{image.id}/actions/reactivate", HTTP_ACCEPT=JSON)

    assert response.status_code == 404
    assert response.json() == glance_error(404, f"No image found with ID {image.id}")
    assert reloaded(image).status == fields["status"]


def test_reactivate_with_body_is_400(owner, image_in):
    image = image_in("deactivated")

    response = owner.client().post(
        f"/v2/images/{image.id}/actions/reactivate",
        data="{}",
        content_type=JSON,
        HTTP_ACCEPT=JSON,
    )

    assert response.status_code == 400
    assert response.json() == glance_error(400, "A body is not expected with this request.")
    assert reloaded(image).status == "deactivated"


# --- while deactivated ----------------------------------------------------------------------


def test_deactivated_image_stays_listed(owner, image_in):
    image = image_in("active")
    owner.client().post(f"/v2/images/{image.id}/actions/deactivate")

    response = owner.client().get("/v2/images")

    assert [i["id"] for i in response.json()["images"]] == [image.id]
