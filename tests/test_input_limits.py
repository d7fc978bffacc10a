"""Inputs that must answer a 4xx in Glance's shape (or be accepted), never a 500."""

from __future__ import annotations

import json
import secrets

import pytest
from django.conf import settings

from images.models import Image
from tasks.models import Task
from tests.support import JSON, error_message, glance_error

THREE_MB = 3 * 1024**2
PATCH_JSON = "application/openstack-images-v2.1-json-patch"
# Every call that parses a JSON body, as (client method, URL, Content-Type).
JSON_BODY_CALLS = [
    ("post", "/v2/images", JSON),
    ("patch", "/v2/images/{id}", PATCH_JSON),
    ("post", "/v2/images/{id}/members", JSON),
    ("post", "/v2/images/{id}/import", JSON),
]


def padded(body: object, size: int) -> str:
    """``body`` as JSON followed by whitespace up to ``size`` characters: still valid JSON."""
    text = json.dumps(body)
    return text + " " * (size - len(text))


def post_json(persona, url: str, body: object):
    return persona.client().post(url, data=json.dumps(body), content_type=JSON, HTTP_ACCEPT=JSON)


@pytest.fixture
def queued(make_image):
    return make_image(
        name="queued", visibility="shared", disk_format="raw", container_format="bare"
    )


# --- body size -------------------------------------------------------------------------------


def test_create_accepts_three_megabyte_body(owner):
    response = owner.client().post(
        "/v2/images", data=padded({"name": "big"}, THREE_MB), content_type=JSON
    )

    assert response.status_code == 201
    assert Image.objects.get(pk=response.json()["id"]).name == "big"


def test_patch_accepts_three_megabyte_body(owner, queued):
    patch = [{"op": "add", "path": "/name", "value": "big"}]

    response = owner.client().patch(
        f"/v2/images/{queued.id}",
        data=padded(patch, THREE_MB),
        content_type=PATCH_JSON,
    )

    assert response.status_code == 200
    assert Image.objects.get(pk=queued.id).name == "big"


def test_member_add_accepts_three_megabyte_body(owner, queued, member):
    response = owner.client().post(
        f"/v2/images/{queued.id}/members",
        data=padded({"member": member.project_id}, THREE_MB),
        content_type=JSON,
    )

    assert response.status_code == 200
    assert list(queued.members.values_list("member_id", flat=True)) == [member.project_id]


@pytest.mark.parametrize(("method", "path", "content_type"), JSON_BODY_CALLS)
def test_body_over_max_request_body_size_is_413(owner, queued, method, path, content_type):
    too_big = settings.MAX_REQUEST_BODY_SIZE + 1

    response = getattr(owner.client(), method)(
        path.format(id=queued.id),
        data=padded({}, too_big),
        content_type=content_type,
        HTTP_ACCEPT=JSON,
    )

    assert response.status_code == 413
    assert response.json() == glance_error(
        413, f"The request body is larger than {settings.MAX_REQUEST_BODY_SIZE} bytes."
    )
    assert Image.objects.count() == 1


# --- nesting ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "content_type"), JSON_BODY_CALLS)
def test_deeply_nested_body_is_400(owner, queued, method, path, content_type):
    response = getattr(owner.client(), method)(
        path.format(id=queued.id),
        data="[" * 100_000,
        content_type=content_type,
        HTTP_ACCEPT=JSON,
    )

    assert response.status_code == 400
    assert response.json() == glance_error(400, "Malformed JSON in request body.")
    assert Image.objects.count() == 1


# --- import ----------------------------------------------------------------------------------


@pytest.mark.parametrize("uri", [5, ["http://example.com/x"], {"url": "x"}, True])
def test_web_download_uri_not_a_string_is_400(owner, queued, uri):
    body = {"method": {"name": "web-download", "uri": uri}}

    response = post_json(owner, f"/v2/images/{queued.id}/import", body)

    assert response.status_code == 400
    assert error_message(response) == (
        f"URI for web-download does not pass filtering: {uri} "
        f"(URI {uri} does not pass filtering: the URI is not a string)"
    )
    assert Image.objects.get(pk=queued.id).status == "queued"
    assert not Task.objects.exists()


# --- encoding --------------------------------------------------------------------------------

DECODING_ERROR = (
    "Error decoding your request. Either the URL or the request body contained characters "
    "that could not be decoded by Glance"
)


@pytest.mark.parametrize(
    "body", ['{"name": "\\ud800"}', '{"os_distro": "a\\udfffb"}', '{"\\ud800": "x"}']
)
def test_create_with_lone_surrogate_is_400(owner, queued, body):
    response = owner.client().post("/v2/images", data=body, content_type=JSON, HTTP_ACCEPT=JSON)

    assert response.status_code == 400
    assert response.json() == glance_error(400, DECODING_ERROR)
    assert Image.objects.count() == 1


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("\\ud800", DECODING_ERROR),
        ("\\u0000", "Null characters are not allowed in the request."),
    ],
)
def test_patch_with_unstorable_value_is_400(owner, queued, value, message):
    patch = '[{"op": "add", "path": "/os_distro", "value": "' + value + '"}]'

    response = owner.client().patch(
        f"/v2/images/{queued.id}", data=patch, content_type=PATCH_JSON, HTTP_ACCEPT=JSON
    )

    assert response.status_code == 400
    assert response.json() == glance_error(400, message)
    assert Image.objects.get(pk=queued.id).property_dict() == {}


def test_body_that_is_not_utf8_is_400(owner, queued):
    response = owner.client().post(
        "/v2/images", data=b'{"name": "\xff"}', content_type=JSON, HTTP_ACCEPT=JSON
    )

    assert response.status_code == 400
    assert response.json() == glance_error(400, DECODING_ERROR)
    assert Image.objects.count() == 1


def test_list_with_query_that_is_not_utf8_is_400(owner, queued):
    response = owner.client().get("/v2/images?name=%FF", HTTP_ACCEPT=JSON)

    assert response.status_code == 400
    assert response.json() == glance_error(400, DECODING_ERROR)


def test_tag_add_with_path_that_is_not_utf8_is_400(owner, queued):
    response = owner.client().put(f"/v2/images/{queued.id}/tags/%FF", HTTP_ACCEPT=JSON)

    assert response.status_code == 400
    assert response.json() == glance_error(400, DECODING_ERROR)
    assert Image.objects.get(pk=queued.id).tag_list() == []


def test_tag_add_with_utf8_path_is_accepted(owner, queued):
    response = owner.client().put(f"/v2/images/{queued.id}/tags/%C3%A9t%C3%A9")

    assert response.status_code == 204
    assert Image.objects.get(pk=queued.id).tag_list() == ["été"]


# --- identifiers -----------------------------------------------------------------------------


def test_create_with_upper_case_id_stores_it_lower_case_and_refuses_its_twin(owner):
    image_id = "0b2c7c4e-5a0e-4f55-9b9e-2f6c8b4d1a11"
    first = owner.client().post(
        "/v2/images", data=json.dumps({"id": image_id.upper()}), content_type=JSON
    )
    second = owner.client().post(
        "/v2/images", data=json.dumps({"id": image_id}), content_type=JSON, HTTP_ACCEPT=JSON
    )

    assert first.status_code == 201 and first.json()["id"] == image_id
    assert second.status_code == 409
    assert error_message(second) == f"Image ID {image_id} already exists!"
    assert list(Image.objects.values_list("id", flat=True)) == [image_id]


@pytest.mark.parametrize("stores", ["cheap", [5], {"cheap": True}])
def test_copy_image_with_stores_not_a_list_of_names_is_400(
    admin, make_image, settings, tmp_path, stores
):
    settings.ENABLED_BACKENDS = {"fast": str(tmp_path / "fast"), "cheap": str(tmp_path / "cheap")}
    settings.DEFAULT_BACKEND = "fast"
    image = make_image(disk_format="raw", container_format="bare")
    admin.client().put(
        f"/v2/images/{image.id}/file", data=b"data", content_type="application/octet-stream"
    )
    body = {"method": {"name": "copy-image"}, "stores": stores}

    response = post_json(admin, f"/v2/images/{image.id}/import", body)

    assert response.status_code == 400
    assert error_message(response) == "'stores' must be a list of store identifiers"
    assert not (tmp_path / "cheap").exists()
    assert not Task.objects.exists()


def test_create_with_null_owner_by_member_is_403(member):
    response = member.client().post(
        "/v2/images", data=json.dumps({"owner": None}), content_type=JSON, HTTP_ACCEPT=JSON
    )

    assert response.status_code == 403
    assert error_message(response) == "You are not permitted to create images owned by 'None'."
    assert not Image.objects.exists()


def test_create_with_null_owner_by_admin_is_accepted(admin):
    response = admin.client().post(
        "/v2/images", data=json.dumps({"owner": None}), content_type=JSON
    )

    assert response.status_code == 201
    assert Image.objects.get(pk=response.json()["id"]).owner == admin.project_id


# --- NUL (PostgreSQL text cannot hold it) ----------------------------------------------------

NUL_ERROR = "Null characters are not allowed in the request."


@pytest.mark.parametrize(
    "body",
    ['{"name": "a\\u0000b"}', '{"os_\\u0000distro": "x"}', '{"tags": ["a\\u0000"]}'],
)
def test_create_with_nul_is_400(owner, body):
    response = owner.client().post("/v2/images", data=body, content_type=JSON, HTTP_ACCEPT=JSON)

    assert response.status_code == 400
    assert response.json() == glance_error(400, NUL_ERROR)
    assert not Image.objects.exists()


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/v2/images/%00"),
        ("get", "/v2/images?name=a%00b"),
        ("put", "/v2/images/{id}/tags/a%00"),
    ],
)
def test_url_with_nul_is_400(owner, queued, method, url):
    response = getattr(owner.client(), method)(url.format(id=queued.id), HTTP_ACCEPT=JSON)

    assert response.status_code == 400
    assert response.json() == glance_error(400, NUL_ERROR)
    assert Image.objects.get(pk=queued.id).tag_list() == []


# --- members ---------------------------------------------------------------------------------


def test_member_add_with_id_over_255_characters_is_400(owner, queued):
    body = {"member": "p" * 256}

    response = post_json(owner, f"/v2/images/{queued.id}/members", body)

    assert response.status_code == 400
    assert error_message(response) == "Member ID is longer than 255 characters."
    assert not queued.members.exists()


def test_member_add_with_id_of_255_characters_is_accepted(owner, queued):
    response = owner.client().post(
        f"/v2/images/{queued.id}/members",
        data=json.dumps({"member": "p" * 255}),
        content_type=JSON,
    )

    assert response.status_code == 200
    assert list(queued.members.values_list("member_id", flat=True)) == ["p" * 255]


# --- property values -------------------------------------------------------------------------


def test_create_with_64_kib_property_value_is_accepted_and_filterable(owner, queued):
    value = secrets.token_hex(32 * 1024)  # incompressible, past a btree entry's size

    created = owner.client().post(
        "/v2/images", data=json.dumps({"os_blob": value}), content_type=JSON
    )
    listed = owner.client().get("/v2/images", {"os_blob": value})

    assert created.status_code == 201
    assert Image.objects.get(pk=created.json()["id"]).property_dict() == {"os_blob": value}
    assert [image["id"] for image in listed.json()["images"]] == [created.json()["id"]]
