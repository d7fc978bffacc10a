"""An s3 store behind the Image API: upload to it by name, ranged download, discovery, delete."""

from __future__ import annotations

import os

import pytest

from images.models import ImageLocation
from images.storage.stores import prepare_stores
from tests.storage.s3_backend import Bucket, fresh_bucket_name, s3_options, s3_service
from tests.support import JSON

MiB = 1024 * 1024
DATA = os.urandom(12 * MiB + 12345)


@pytest.fixture
def cheap(settings, tmp_path):
    """Two stores: files by default, and "cheap" in a fresh bucket."""
    bucket = Bucket(s3_service(), fresh_bucket_name())
    settings.ENABLED_BACKENDS = {
        "fast": str(tmp_path / "fast"),
        "cheap": s3_options(bucket.service, bucket.name),
    }
    settings.DEFAULT_BACKEND = "fast"
    assert prepare_stores() == []
    yield bucket
    bucket.remove()


@pytest.fixture
def image(make_image):
    return make_image(disk_format="raw", container_format="bare")


def upload_to_cheap(client, image_id: str):
    return client.put(
        f"/v2/images/{image_id}/file",
        data=DATA,
        content_type="application/octet-stream",
        HTTP_X_IMAGE_META_STORE="cheap",
    )


def test_upload_to_the_s3_store_activates_the_image_there(owner, cheap, image, settings):
    settings.SHOW_MULTIPLE_LOCATIONS = True
    client = owner.client()

    response = upload_to_cheap(client, image.id)

    assert response.status_code == 204
    body = client.get(f"/v2/images/{image.id}", HTTP_ACCEPT=JSON).json()
    assert (body["status"], body["stores"], body["size"]) == ("active", "cheap", len(DATA))
    location = f"s3://{cheap.service['S3_ENDPOINT'].split('://')[1]}/{cheap.name}/{image.id}"
    assert body["locations"] == [{"url": location, "metadata": {"store": "cheap"}}]
    assert list(ImageLocation.objects.filter(image=image).values_list("store", "url")) == [
        ("cheap", location)
    ]
    assert cheap.objects() == [image.id]
    assert cheap.uploads() == []


def test_ranged_download_from_the_s3_store_is_byte_exact(owner, cheap, image):
    client = owner.client()
    upload_to_cheap(client, image.id)
    start, end = 5 * MiB - 10, 10 * MiB + 9  # across two part boundaries

    response = client.get(f"/v2/images/{image.id}/file", HTTP_RANGE=f"bytes={start}-{end}")

    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes {start}-{end}/{len(DATA)}"
    assert b"".join(response.streaming_content) == DATA[start : end + 1]
    response.close()


def test_stores_detail_shows_the_s3_store_without_credentials(admin, cheap):
    response = admin.client().get("/v2/info/stores/detail", HTTP_ACCEPT=JSON)

    assert response.status_code == 200
    stores = {store["id"]: store for store in response.json()["stores"]}
    assert stores["cheap"] == {
        "id": "cheap",
        "type": "s3",
        "weight": 0,
        "properties": {
            "s3_store_large_object_size": 5 * MiB,
            "s3_store_large_object_chunk_size": 5 * MiB,
            "s3_store_thread_pools": 10,
        },
    }
    assert cheap.service["S3_SECRET_KEY"] not in response.content.decode()


def test_image_delete_removes_the_object_and_its_parts(owner, cheap, image):
    client = owner.client()
    upload_to_cheap(client, image.id)

    response = client.delete(f"/v2/images/{image.id}")

    assert response.status_code == 204
    assert cheap.objects() == []
    assert cheap.uploads() == []
    assert cheap.leftovers(image.id) == []
