"""POST /v2/images (glance-api-v2.md §5.1)."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from images.models import Image
from tests.support import error_message

IMAGE_KEYS = {
    "id", "name", "status", "visibility", "protected", "os_hidden", "checksum", "os_hash_algo",
    "os_hash_value", "owner", "size", "virtual_size", "container_format", "disk_format",
    "min_disk", "min_ram", "created_at", "updated_at", "tags", "self", "file", "schema",
}  # fmt: skip


def post(client, body, **extra):
    return client.post(
        "/v2/images", data=json.dumps(body), content_type="application/json", **extra
    )


def test_create_returns_queued_image_with_glance_defaults(owner):
    response = post(owner.client(), {"name": "cirros", "os_distro": "cirros", "tags": ["a", "a"]})

    assert response.status_code == 201
    body = response.json()
    assert set(body) == IMAGE_KEYS | {"os_distro"}
    assert body["status"] == "queued"
    assert body["visibility"] == "shared"
    assert body["owner"] == owner.project_id
    assert body["protected"] is False and body["os_hidden"] is False
    assert body["min_disk"] == 0 and body["min_ram"] == 0
    assert body["size"] is None and body["checksum"] is None
    assert body["tags"] == ["a"]
    assert body["os_distro"] == "cirros"
    assert body["created_at"] == body["updated_at"]
    assert body["self"] == f"/v2/images/{body['id']}"
    assert body["file"] == f"/v2/images/{body['id']}/file"
    assert body["schema"] == "/v2/schemas/image"
    assert response["Location"] == f"http://testserver/v2/images/{body['id']}"
    assert response["Content-Type"] == "application/json"
    image = Image.objects.get(pk=body["id"])
    assert image.property_dict() == {"os_distro": "cirros"}
    assert image.tag_list() == ["a"]


def test_create_accepts_client_supplied_id_and_refuses_reuse(owner):
    image_id = "0b2c7c4e-5a0e-4f55-9b9e-2f6c8b4d1a11"
    first = post(owner.client(), {"id": image_id})
    second = post(owner.client(), {"id": image_id}, HTTP_ACCEPT="application/json")

    assert first.status_code == 201 and first.json()["id"] == image_id
    assert second.status_code == 409
    assert error_message(second) == f"Image ID {image_id} already exists!"


def test_create_ignores_content_type_like_glance(owner):
    response = owner.client().post(
        "/v2/images", data=json.dumps({"name": "x"}), content_type="text/plain"
    )

    assert response.status_code == 201


@pytest.mark.parametrize("name", ["status", "checksum", "size", "created_at", "os_hash_value"])
def test_create_refuses_read_only_attribute(owner, name):
    value = {"size": 1, "status": "active"}.get(name, "x")
    response = post(owner.client(), {name: value}, HTTP_ACCEPT="application/json")

    assert response.status_code == 403
    assert error_message(response) == f"Attribute '{name}' is read-only."
    assert not Image.objects.exists()


@pytest.mark.parametrize("name", ["self", "file", "schema", "direct_url", "stores"])
def test_create_refuses_link_attributes_first(owner, name):
    response = post(owner.client(), {name: "x", "min_ram": "bad"}, HTTP_ACCEPT="application/json")

    assert response.status_code == 403
    assert error_message(response) == f"Attribute '{name}' is read-only."


@pytest.mark.parametrize("name", ["os_glance_import_task", "deleted", "location", "deleted_at"])
def test_create_refuses_reserved_attribute(owner, name):
    response = post(owner.client(), {name: "x"}, HTTP_ACCEPT="application/json")

    assert response.status_code == 403
    assert error_message(response) == f"Attribute '{name}' is reserved."


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"disk_format": "floppy"}, "'floppy' is not one of"),
        ({"min_ram": "big"}, "'big' is not of type 'integer'"),
        ({"custom": 5}, "5 is not of type 'string'"),
        ({"name": "n" * 256}, "is too long"),
        ({"id": "not-a-uuid"}, "does not match"),
        ({"min_disk": -1}, "-1 is out of range"),
    ],
)
def test_create_refuses_values_outside_the_schema(owner, body, reason):
    response = post(owner.client(), body, HTTP_ACCEPT="application/json")

    assert response.status_code == 400
    message = error_message(response)
    assert message.startswith("Provided object does not match schema 'image': ")
    assert reason in message


def test_create_refuses_long_custom_property_name(owner):
    response = post(owner.client(), {"k" * 256: "v"}, HTTP_ACCEPT="application/json")

    assert response.status_code == 400
    assert error_message(response) == "Custom property should not be greater than 255 characters."


def test_create_for_another_project_is_admin_only(owner, admin):
    refused = post(owner.client(), {"owner": "someone-else"}, HTTP_ACCEPT="application/json")
    allowed = post(admin.client(), {"owner": "someone-else"})

    assert refused.status_code == 403
    assert (
        error_message(refused) == "You are not permitted to create images owned by 'someone-else'."
    )
    assert allowed.status_code == 201 and allowed.json()["owner"] == "someone-else"


def test_create_public_needs_admin_but_community_needs_member(owner, admin):
    public = post(owner.client(), {"visibility": "public"}, HTTP_ACCEPT="application/json")
    community = post(owner.client(), {"visibility": "community"})
    admin_public = post(admin.client(), {"visibility": "public"})

    assert public.status_code == 403
    assert error_message(public) == "You are not authorized to complete publicize_image action."
    assert community.status_code == 201
    assert admin_public.status_code == 201 and admin_public.json()["visibility"] == "public"


def test_create_by_reader_only_user_is_refused(reader):
    response = post(reader.client(), {"name": "x"}, HTTP_ACCEPT="application/json")

    assert response.status_code == 403
    assert error_message(response) == "You are not authorized to complete add_image action."


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "Body expected in request."),
        ("{not json", "Malformed JSON in request body."),
        ("42", "Unexpected body type. Expected list/dict."),
    ],
)
def test_create_refuses_bad_bodies(owner, raw, message):
    response = owner.client().post(
        "/v2/images", data=raw, content_type="application/json", HTTP_ACCEPT="application/json"
    )

    assert response.status_code == 400
    assert error_message(response) == message


@override_settings(IMAGE_PROPERTY_QUOTA=2, IMAGE_TAG_QUOTA=1)
def test_create_enforces_property_and_tag_quotas(owner):
    props = post(owner.client(), {"a": "1", "b": "2", "c": "3"}, HTTP_ACCEPT="application/json")
    tags = post(owner.client(), {"tags": ["x", "y"]})
    at_limit = post(owner.client(), {"a": "1", "b": "2", "tags": ["x"]})

    assert props.status_code == 413
    assert "Attempted: 3, Maximum: 2" in error_message(props)
    assert tags.status_code == 413
    assert at_limit.status_code == 201
    assert Image.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": "rocket 🚀"}, "Name can't contain 4 byte unicode characters."),
        ({"os_distro": "🐧"}, "Os_Distro can't contain 4 byte unicode characters."),
        ({"os_🐧": "linux"}, "Property names can't contain 4 byte unicode."),
        ({"tags": ["ok", "🏷"]}, "Param values can't contain 4 byte unicode."),
    ],
)
def test_create_refuses_4_byte_characters_in_glances_words_and_makes_nothing(owner, body, message):
    response = post(owner.client(), body, HTTP_ACCEPT="application/json")

    assert response.status_code == 400
    assert error_message(response) == message
    assert Image.objects.count() == 0


def test_create_keeps_3_byte_characters(owner):
    response = post(owner.client(), {"name": "雪 ☃", "note": "€"})

    assert response.status_code == 201
    assert (response.json()["name"], response.json()["note"]) == ("雪 ☃", "€")


@override_settings(IMAGE_TAG_QUOTA=128)
def test_create_over_the_tag_quota_says_so_as_glances_images_api(owner):
    tags = [f"t{n}" for n in range(129)]

    response = post(owner.client(), {"tags": tags}, HTTP_ACCEPT="application/json")

    assert response.status_code == 413
    assert error_message(response) == (
        "The limit has been exceeded on the number of allowed image tags. "
        "Attempted: 129, Maximum: 128"
    )
