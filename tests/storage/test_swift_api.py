"""The Image API over a Swift store: upload, ranged download, store details and delete through
the Django test client, with the data in the real Swift of ``scripts/swift-aio.sh``."""

from __future__ import annotations

import os

import pytest

from images.models import Image
from tests.storage.swift_support import MB, SwiftContainer, fresh_container, swift_options
from tests.support import JSON

MiB = 1024 * 1024
DATA = os.urandom(7 * MiB + 3)  # segments of 5 MB, 1 MB, 1 MB and the rest


@pytest.fixture
def container(request) -> SwiftContainer:
    return fresh_container(request)


@pytest.fixture
def objects_store(settings, container):
    settings.ENABLED_BACKENDS = {"objects": swift_options(container.facts, container.name)}


@pytest.fixture
def uploaded(owner, make_image, objects_store) -> Image:
    image = make_image(disk_format="raw", container_format="bare")
    response = owner.client().put(
        f"/v2/images/{image.id}/file",
        data=DATA,
        content_type="application/octet-stream",
        HTTP_X_IMAGE_META_STORE="objects",
    )
    assert response.status_code == 204
    return image


def test_upload_to_the_swift_store_activates_the_image(owner, uploaded, container):
    response = owner.client().get(f"/v2/images/{uploaded.id}", HTTP_ACCEPT=JSON)

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["size"], body["stores"]) == ("active", len(DATA), "objects")
    names = container.objects(str(uploaded.id))
    assert names[0] == str(uploaded.id)
    assert [name.rsplit("-", 1)[1] for name in names[1:]] == ["00001", "00002", "00003", "00004"]
    location = uploaded.locations.get()
    assert location.url == f"swift+config://ref1/{container.name}/{uploaded.id}"


def test_ranged_download_from_the_swift_store_is_206_byte_exact(owner, uploaded):
    start, end = 5 * MB - 10, 6 * MB + 9  # across three segments

    response = owner.client().get(
        f"/v2/images/{uploaded.id}/file", HTTP_RANGE=f"bytes={start}-{end}"
    )

    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes {start}-{end}/{len(DATA)}"
    assert b"".join(response.streaming_content) == DATA[start : end + 1]
    response.close()


def test_stores_detail_shows_the_swift_store_without_credentials(admin, objects_store, container):
    response = admin.client().get("/v2/info/stores/detail", HTTP_ACCEPT=JSON)

    assert response.status_code == 200
    assert response.json() == {
        "stores": [
            {
                "id": "objects",
                "default": "true",
                "type": "swift",
                "weight": 0,
                "properties": {
                    "container": container.name,
                    "large_object_size": 5 * MB,
                    "large_object_chunk_size": MB,
                },
            }
        ]
    }
    assert container.facts["SWIFT_KEY"] not in response.content.decode()


def test_deleting_the_image_removes_manifest_and_segments(owner, uploaded, container):
    response = owner.client().delete(f"/v2/images/{uploaded.id}")

    assert response.status_code == 204
    assert container.objects(str(uploaded.id)) == []
