"""GET and PATCH /v2/images/{id} (glance-api-v2.md §5.3, §5.4)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import override_settings

from images.models import Image
from tests.support import error_message

V21 = "application/openstack-images-v2.1-json-patch"
V20 = "application/openstack-images-v2.0-json-patch"


def patch(client, image, operations, content_type=V21):
    return client.patch(
        f"/v2/images/{image.id}",
        data=json.dumps(operations),
        content_type=content_type,
        HTTP_ACCEPT="application/json",
    )


@pytest.fixture
def image(make_image):
    return make_image(name="before", disk_format="raw", properties={"os_distro": "cirros"})


def test_show_returns_the_image_with_string_properties(owner, image):
    response = owner.client().get(f"/v2/images/{image.id}")

    assert response.status_code == 200
    assert response.json()["id"] == image.id
    assert response.json()["os_distro"] == "cirros"


def test_show_unknown_or_name_is_plain_404(owner):
    response = owner.client().get("/v2/images/my-image-name", HTTP_ACCEPT="application/json")

    assert response.status_code == 404
    assert error_message(response) == "No image found with ID my-image-name"


def test_show_with_a_body_is_refused(owner, image):
    response = owner.client().generic(
        "GET", f"/v2/images/{image.id}", data="{}", HTTP_ACCEPT="application/json"
    )

    assert response.status_code == 400
    assert error_message(response) == "A body is not expected with this request."


def test_patch_applies_all_operations_in_order(owner, image):
    response = patch(
        owner.client(),
        image,
        [
            {"op": "replace", "path": "/name", "value": "after"},
            {"op": "add", "path": "/hw_disk_bus", "value": "scsi"},
            {"op": "remove", "path": "/os_distro"},
            {"op": "replace", "path": "/tags", "value": ["b", "a", "b"]},
            {"op": "replace", "path": "/min_ram", "value": 512},
        ],
    )

    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "after" and body["hw_disk_bus"] == "scsi"
    assert "os_distro" not in body
    assert body["tags"] == ["a", "b"] and body["min_ram"] == 512
    image = Image.objects.get(pk=image.pk)
    assert image.property_dict() == {"hw_disk_bus": "scsi"}
    assert (image.name, image.min_ram, image.tag_list()) == ("after", 512, ["a", "b"])


def test_patch_v20_media_type_uses_operation_as_key(owner, image):
    response = patch(
        owner.client(), image, [{"replace": "/name", "value": "draft4"}], content_type=V20
    )
    duplicate = patch(owner.client(), image, [{"add": "/os_distro", "value": "x"}], V20)

    assert response.status_code == 200 and response.json()["name"] == "draft4"
    assert duplicate.status_code == 409
    assert error_message(duplicate) == "Property os_distro already present."


def test_patch_failing_operation_changes_nothing(owner, image):
    before = Image.objects.get(pk=image.pk).updated_at
    response = patch(
        owner.client(),
        image,
        [
            {"op": "replace", "path": "/name", "value": "lost"},
            {"op": "remove", "path": "/missing"},
        ],
    )

    assert response.status_code == 409
    assert error_message(response) == "Property missing does not exist."
    image = Image.objects.get(pk=image.pk)
    assert image.name == "before" and image.updated_at == before


def test_patch_empty_list_keeps_updated_at(owner, make_image):
    image = make_image(name="x")
    Image.objects.filter(pk=image.pk).update(updated_at=image.updated_at - timedelta(hours=1))
    stamp = Image.objects.get(pk=image.pk).updated_at

    response = patch(owner.client(), image, [])

    assert response.status_code == 200
    assert Image.objects.get(pk=image.pk).updated_at == stamp


def test_patch_change_moves_updated_at(owner, make_image):
    image = make_image(name="x")
    Image.objects.filter(pk=image.pk).update(updated_at=image.updated_at - timedelta(hours=1))
    stamp = Image.objects.get(pk=image.pk).updated_at

    patch(owner.client(), image, [{"op": "replace", "path": "/name", "value": "y"}])

    assert Image.objects.get(pk=image.pk).updated_at > stamp


@pytest.mark.parametrize(
    ("operation", "code", "message"),
    [
        ({"op": "replace", "path": "/status", "value": "active"}, 403, "Attribute 'status' is read-only."),
        ({"op": "add", "path": "/os_hash_value", "value": "x"}, 403, "Attribute 'os_hash_value' is read-only."),
        ({"op": "add", "path": "/os_glance_x", "value": "x"}, 403, "Attribute 'os_glance_x' is reserved."),
        ({"op": "remove", "path": "/name"}, 403, "Property name may not be removed."),
        ({"op": "replace", "path": "/missing", "value": "x"}, 409, "Property missing does not exist."),
        ({"op": "replace", "path": "/owner", "value": "x"}, 403, "Owner can't be updated by non admin."),
        ({"op": "replace", "path": "/min_ram", "value": -1}, 400, "Provided object does not match schema 'image': -1 is out of range"),
        ({"op": "add", "path": "/custom", "value": 1}, 400, "Provided object does not match schema 'image': 1 is not of type 'string'"),
        ({"op": "test", "path": "/name", "value": "x"}, 400, "Invalid operation: `test`. It must be one of the following: add, remove, replace."),
        ({"op": "add", "path": "/name"}, 400, 'Operation "add" requires a member named "value".'),
        ({"op": "add", "path": "/tags/-", "value": "x"}, 400, "Invalid JSON pointer for this resource: '/tags/-'"),
        ({"op": "add", "path": "name", "value": "x"}, 400, "Invalid JSON pointer for this resource: 'name'"),
        ({"op": "replace", "path": "/visibility", "value": "public"}, 403, "You are not authorized to complete publicize_image action."),
    ],
)  # fmt: skip
def test_patch_refuses_like_glance(owner, image, operation, code, message):
    response = patch(owner.client(), image, [operation])

    assert response.status_code == code
    assert error_message(response) == message


def test_patch_formats_only_while_queued(owner, make_image):
    image = make_image(status="active", disk_format="raw")

    response = patch(
        owner.client(), image, [{"op": "replace", "path": "/disk_format", "value": "qcow2"}]
    )

    assert response.status_code == 403
    assert (
        error_message(response) == "Attribute disk_format can be only replaced for a queued image."
    )
    assert Image.objects.get(pk=image.pk).disk_format == "raw"


def test_patch_escaped_pointer_names_property(owner, image):
    response = patch(owner.client(), image, [{"op": "add", "path": "/a~1b~0c", "value": "v"}])

    assert response.status_code == 200
    assert response.json()["a/b~c"] == "v"


def test_patch_other_media_type_is_415_with_accept_patch(owner, image):
    response = patch(owner.client(), image, [], content_type="application/json-patch+json")

    assert response.status_code == 415
    assert response["Accept-Patch"] == f"{V20}, {V21}"
    assert "Image PATCH expects Content-Type one of" in response.json()["message"]


def test_patch_media_type_parameters_are_ignored(owner, image):
    response = patch(
        owner.client(),
        image,
        [{"op": "replace", "path": "/name", "value": "p"}],
        f"{V21}; charset=UTF-8",
    )

    assert response.status_code == 200


def test_patch_by_admin_can_change_owner(admin, image):
    response = patch(admin.client(), image, [{"op": "replace", "path": "/owner", "value": "new"}])

    assert response.status_code == 200
    assert Image.objects.get(pk=image.pk).owner == "new"


@override_settings(IMAGE_TAG_QUOTA=2)
def test_patch_tag_quota_is_413(owner, image):
    response = patch(
        owner.client(), image, [{"op": "replace", "path": "/tags", "value": ["a", "b", "c"]}]
    )

    assert response.status_code == 413
    assert Image.objects.get(pk=image.pk).tag_list() == []


@pytest.mark.parametrize(
    ("operation", "message"),
    [
        ({"op": "replace", "path": "/name", "value": "🚀"}, "Name can't contain 4 byte unicode characters."),
        ({"op": "add", "path": "/hw_🚀", "value": "x"}, "Property names can't contain 4 byte unicode."),
        ({"op": "replace", "path": "/tags", "value": ["🚀"]}, "Param values can't contain 4 byte unicode."),
    ],
)  # fmt: skip
def test_patch_refuses_4_byte_characters_and_changes_nothing(owner, image, operation, message):
    response = patch(owner.client(), image, [operation])

    assert response.status_code == 400
    assert error_message(response) == message
    stored = Image.objects.get(pk=image.pk)
    assert (stored.name, stored.property_dict(), stored.tag_list()) == (
        "before",
        {"os_distro": "cirros"},
        [],
    )
