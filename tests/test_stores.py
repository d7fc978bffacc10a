"""Stores: /v2/info/stores[/detail], X-Image-Meta-Store, stores/direct_url/locations fields
(glance-api-v2.md §3.2, §5.1, §6.1, §8.2, §8.3)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from images.models import Image, ImageLocation
from images.storage import stores
from tests.support import JSON, glance_error, reloaded

OCTET = "application/octet-stream"
ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"
FAST_DESCRIPTION = "Provides quick access to your image data"


@pytest.fixture
def fast(tmp_path) -> Path:
    return tmp_path / "fast"


@pytest.fixture
def cheap(tmp_path) -> Path:
    return tmp_path / "cheap"


@pytest.fixture
def two_stores(settings, fast, cheap):
    settings.ENABLED_BACKENDS = {"fast": str(fast), "cheap": str(cheap)}
    settings.DEFAULT_BACKEND = "fast"
    settings.BACKEND_DESCRIPTIONS = {"fast": FAST_DESCRIPTION}


@pytest.fixture
def image(make_image):
    return make_image(disk_format="raw", container_format="bare")


def upload(client, image_id, **headers):
    return client.put(
        f"/v2/images/{image_id}/file",
        data=ALPHABET,
        content_type=OCTET,
        HTTP_ACCEPT=JSON,
        **headers,
    )


def show(client, image_id) -> dict:
    response = client.get(f"/v2/images/{image_id}", HTTP_ACCEPT=JSON)
    assert response.status_code == 200
    return response.json()


def files_in(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir()) if directory.exists() else []


# --- discovery -------------------------------------------------------------------------------


def test_stores_info_single_store_is_404(owner):
    response = owner.client().get("/v2/info/stores", HTTP_ACCEPT=JSON)

    assert response.status_code == 404
    assert response.json() == glance_error(404, "Multi backend is not supported at this site.")


def test_stores_detail_single_store_is_404(admin):
    response = admin.client().get("/v2/info/stores/detail", HTTP_ACCEPT=JSON)

    assert response.status_code == 404
    assert response.json() == glance_error(404, "Multi backend is not supported at this site.")


def test_stores_info_lists_stores_with_string_default(owner, two_stores):
    response = owner.client().get("/v2/info/stores", HTTP_ACCEPT=JSON)

    assert response.status_code == 200
    assert response.json() == {
        "stores": [
            {"id": "fast", "description": FAST_DESCRIPTION, "default": "true"},
            {"id": "cheap"},
        ]
    }


def test_stores_info_default_follows_setting(owner, two_stores, settings):
    settings.DEFAULT_BACKEND = "cheap"

    response = owner.client().get("/v2/info/stores", HTTP_ACCEPT=JSON)

    assert response.json() == {
        "stores": [
            {"id": "fast", "description": FAST_DESCRIPTION},
            {"id": "cheap", "default": "true"},
        ]
    }


def test_stores_detail_for_admin(admin, two_stores, fast, cheap):
    response = admin.client().get("/v2/info/stores/detail", HTTP_ACCEPT=JSON)

    assert response.status_code == 200
    stores = response.json()["stores"]
    assert [store["id"] for store in stores] == ["fast", "cheap"]
    for store, directory in zip(stores, (fast, cheap), strict=True):
        assert (store["type"], store["weight"]) == ("file", 0)
        assert store["properties"]["data_dir"] == str(directory)
        assert store["properties"]["thin_provisioning"] is False
        assert isinstance(store["properties"]["chunk_size"], int)
    assert (stores[0]["default"], stores[0]["description"]) == ("true", FAST_DESCRIPTION)
    assert "default" not in stores[1]
    assert "description" not in stores[1]


def test_stores_detail_for_non_admin_is_403(owner, two_stores):
    response = owner.client().get("/v2/info/stores/detail", HTTP_ACCEPT=JSON)

    assert response.status_code == 403
    assert response.json() == glance_error(
        403, "You are not authorized to complete stores_info_detail action."
    )


def test_stores_info_with_a_body_is_400(owner, two_stores):
    response = owner.client().generic(
        "GET", "/v2/info/stores", b"{}", content_type=JSON, HTTP_ACCEPT=JSON
    )

    assert response.status_code == 400


# --- create and upload -----------------------------------------------------------------------


def test_create_in_multi_store_mode_names_the_stores(owner, two_stores):
    response = owner.client().post("/v2/images", {"name": "x"}, format="json", HTTP_ACCEPT=JSON)

    assert response.status_code == 201
    assert response["OpenStack-image-store-ids"] == "fast,cheap"
    assert "stores" not in response.json()


def test_create_in_single_store_mode_has_no_store_header(owner):
    response = owner.client().post("/v2/images", {"name": "x"}, format="json", HTTP_ACCEPT=JSON)

    assert response.status_code == 201
    assert "OpenStack-image-store-ids" not in response


def test_upload_to_named_store_writes_only_there(owner, two_stores, image, fast, cheap, data_dir):
    response = upload(owner.client(), image.id, HTTP_X_IMAGE_META_STORE="cheap")

    assert response.status_code == 204
    assert files_in(cheap) == [image.id]
    assert (cheap / image.id).read_bytes() == ALPHABET
    assert files_in(fast) == []
    assert files_in(data_dir / "images") == []
    assert list(ImageLocation.objects.filter(image=image).values_list("store", "url")) == [
        ("cheap", (cheap / image.id).as_uri())
    ]
    assert show(owner.client(), image.id)["stores"] == "cheap"


def test_upload_without_store_header_uses_default_store(owner, two_stores, image, fast, cheap):
    response = upload(owner.client(), image.id)

    assert response.status_code == 204
    assert files_in(fast) == [image.id]
    assert files_in(cheap) == []
    assert show(owner.client(), image.id)["stores"] == "fast"


def test_upload_to_unknown_store_is_400_and_stays_queued(owner, two_stores, image, fast, cheap):
    response = upload(owner.client(), image.id, HTTP_X_IMAGE_META_STORE="nowhere")

    assert response.status_code == 400
    assert response.json()["code"] == "400 Bad Request"
    assert reloaded(image).status == "queued"
    assert not ImageLocation.objects.filter(image=image).exists()
    assert files_in(fast) == []
    assert files_in(cheap) == []


def test_upload_unknown_store_is_checked_before_the_image(owner, two_stores):
    response = upload(
        owner.client(),
        "00000000-0000-4000-8000-000000000000",
        HTTP_X_IMAGE_META_STORE="nowhere",
    )

    assert response.status_code == 400


def test_queued_image_in_multi_store_mode_has_no_stores_field(owner, two_stores, image):
    assert "stores" not in show(owner.client(), image.id)


def test_delete_removes_file_from_its_store(owner, two_stores, image, cheap):
    client = owner.client()
    upload(client, image.id, HTTP_X_IMAGE_META_STORE="cheap")

    response = client.delete(f"/v2/images/{image.id}")

    assert response.status_code == 204
    assert files_in(cheap) == []


def test_download_reads_from_the_store_holding_the_data(owner, two_stores, image):
    client = owner.client()
    upload(client, image.id, HTTP_X_IMAGE_META_STORE="cheap")

    response = client.get(f"/v2/images/{image.id}/file")

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == ALPHABET
    response.close()


# --- direct_url and locations ----------------------------------------------------------------


def test_direct_url_absent_until_image_has_data(owner, image, settings, data_dir):
    settings.SHOW_IMAGE_DIRECT_URL = True
    client = owner.client()
    before = show(client, image.id)

    upload(client, image.id)
    after = show(client, image.id)

    assert "direct_url" not in before
    assert after["direct_url"] == (data_dir / "images" / image.id).as_uri()
    assert "locations" not in after


def test_direct_url_hidden_by_default(owner, image):
    client = owner.client()
    upload(client, image.id)

    body = show(client, image.id)

    assert "direct_url" not in body
    assert "locations" not in body
    assert "stores" not in body


def test_locations_listed_when_shown(owner, image, settings, data_dir):
    settings.SHOW_MULTIPLE_LOCATIONS = True
    client = owner.client()
    before = show(client, image.id)

    upload(client, image.id)
    after = show(client, image.id)

    assert before["locations"] == []
    assert [location["url"] for location in after["locations"]] == [
        (data_dir / "images" / image.id).as_uri()
    ]
    assert "direct_url" not in after


def test_locations_carry_store_in_multi_store_mode(owner, two_stores, image, settings, cheap):
    settings.SHOW_MULTIPLE_LOCATIONS = True
    client = owner.client()
    upload(client, image.id, HTTP_X_IMAGE_META_STORE="cheap")

    body = show(client, image.id)

    assert body["locations"] == [
        {"url": (cheap / image.id).as_uri(), "metadata": {"store": "cheap"}}
    ]


def test_locations_of_deactivated_image_hidden_from_non_admin(owner, image, settings):
    settings.SHOW_MULTIPLE_LOCATIONS = True
    client = owner.client()
    upload(client, image.id)
    Image.objects.filter(pk=image.pk).update(status="deactivated")

    body = show(client, image.id)

    assert body["locations"] == []


def test_locations_of_deactivated_image_shown_to_admin(admin, owner, image, settings, data_dir):
    settings.SHOW_MULTIPLE_LOCATIONS = True
    upload(owner.client(), image.id)
    Image.objects.filter(pk=image.pk).update(status="deactivated")

    body = show(admin.client(), image.id)

    assert [location["url"] for location in body["locations"]] == [
        (data_dir / "images" / image.id).as_uri()
    ]


def test_a_forked_process_builds_its_own_stores(two_stores):
    # Built stores hold their clients' connections: a job process forked from a parent that
    # used them must not share those sockets (and read its siblings' answers).
    parent_store = stores.all_stores()["fast"]
    readable, writable = os.pipe()

    pid = os.fork()
    if pid == 0:  # the child: report, then leave without running pytest's teardown
        os.write(writable, b"own" if stores.all_stores()["fast"] is not parent_store else b"same")
        os._exit(0)
    os.waitpid(pid, 0)

    assert os.read(readable, 4) == b"own"
    assert stores.all_stores()["fast"] is parent_store  # the parent keeps its own
