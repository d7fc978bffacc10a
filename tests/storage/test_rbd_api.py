"""rbd stores behind the Image API: upload by store name, what the pool then holds, ranged
download, discovery, deletes refused while a clone exists, copy-image file → RBD → second RBD
store (inside Ceph), an upload over the size cap, and an OSD that stops answering."""

from __future__ import annotations

import json
import os
import time

import pytest

from images.models import ImageLocation
from images.storage.ceph_rbd import RbdStore
from images.storage.filesystem import FilesystemStore
from images.storage.stores import all_stores, prepare_stores
from tasks.models import Task
from tests.storage.rbd_support import Pool, ceph_aio, rbd_options, shared_pool
from tests.support import JSON, error_message, reloaded

MiB = 1024 * 1024
DATA = os.urandom(6 * MiB + 12345)


@pytest.fixture
def pool():
    pool = shared_pool()
    before = set(pool.names())
    yield pool
    pool.remove_new(before)


@pytest.fixture
def second_pool(pool):
    second = Pool({**pool.service, "CEPH_POOL": pool.service["CEPH_SECOND_POOL"]})
    before = set(second.names())
    yield second
    second.remove_new(before)


@pytest.fixture
def ceph(settings, tmp_path, pool, second_pool):
    """Files by default, "ceph" in the pool images and "ceph2" in the pool images2."""
    settings.ENABLED_BACKENDS = {
        "fast": str(tmp_path / "fast"),
        "ceph": rbd_options(pool.service, rados_connect_timeout="5"),
        "ceph2": rbd_options(pool.service, rbd_store_pool=pool.service["CEPH_SECOND_POOL"]),
    }
    settings.DEFAULT_BACKEND = "fast"
    settings.SHOW_MULTIPLE_LOCATIONS = True
    assert prepare_stores() == []
    return pool


@pytest.fixture
def image(make_image):
    return make_image(disk_format="raw", container_format="bare")


def upload(client, image_id: str, data: bytes = DATA, store: str = "ceph"):
    return client.put(
        f"/v2/images/{image_id}/file",
        data=data,
        content_type="application/octet-stream",
        HTTP_X_IMAGE_META_STORE=store,
        HTTP_ACCEPT=JSON,
    )


def location(pool, image_id: str) -> str:
    return f"rbd://{pool.service['CEPH_FSID']}/images/{image_id}/snap"


def test_upload_to_the_rbd_store_leaves_an_rbd_image_with_a_protected_snapshot(owner, ceph, image):
    client = owner.client()

    response = upload(client, image.id)

    assert response.status_code == 204
    body = client.get(f"/v2/images/{image.id}", HTTP_ACCEPT=JSON).json()
    assert (body["status"], body["stores"], body["size"]) == ("active", "ceph", len(DATA))
    url = location(ceph, image.id)
    assert body["locations"] == [{"url": url, "metadata": {"store": "ceph"}}]
    assert list(ImageLocation.objects.filter(image=image).values_list("store", "url")) == [
        ("ceph", url)
    ]
    assert ceph.names(image.id) == [image.id]
    with ceph.image(image.id) as stored:
        assert stored.is_protected_snap("snap")
        assert stored.size() == len(DATA)
    with ceph.image(image.id, snapshot="snap") as snapshot:
        assert snapshot.read(0, len(DATA)) == DATA


def test_ranged_download_from_the_rbd_store_is_byte_exact(owner, ceph, image):
    client = owner.client()
    upload(client, image.id)
    start, end = MiB - 10, 5 * MiB + 9  # across object and read-ahead boundaries

    response = client.get(f"/v2/images/{image.id}/file", HTTP_RANGE=f"bytes={start}-{end}")

    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes {start}-{end}/{len(DATA)}"
    assert b"".join(response.streaming_content) == DATA[start : end + 1]
    response.close()


def test_stores_detail_shows_type_rbd_with_pool_chunk_size_thin_provisioning_and_fsid(admin, ceph):
    response = admin.client().get("/v2/info/stores/detail", HTTP_ACCEPT=JSON)

    assert response.status_code == 200
    stores = {store["id"]: store for store in response.json()["stores"]}
    assert stores["ceph"] == {
        "id": "ceph",
        "type": "rbd",
        "weight": 0,
        "properties": {
            "chunk_size": MiB,
            "pool": "images",
            "thin_provisioning": False,
            "fsid": ceph.service["CEPH_FSID"],
        },
    }


def test_delete_while_a_clone_exists_is_409_in_use_and_the_image_stays(owner, ceph, image):
    client = owner.client()
    upload(client, image.id)
    ceph.clone(image.id, f"{image.id}-clone")

    refused = client.delete(f"/v2/images/{image.id}", HTTP_ACCEPT=JSON)

    assert refused.status_code == 409
    assert error_message(refused) == (
        f"Image {image.id} could not be deleted because it is in use: The image cannot be "
        "deleted because it is in use through the backend store outside of Glance."
    )
    assert reloaded(image).status == "active"
    assert ImageLocation.objects.filter(image=image, store="ceph").exists()
    download = client.get(f"/v2/images/{image.id}/file")
    assert b"".join(download.streaming_content) == DATA  # read to the end, the client closes it

    ceph.remove(f"{image.id}-clone")
    deleted = client.delete(f"/v2/images/{image.id}")

    assert deleted.status_code == 204
    assert ceph.names(image.id) == []


def test_delete_of_an_image_in_a_file_and_an_rbd_store_with_a_clone_keeps_both_copies(
    admin, ceph, image, tmp_path
):
    client = admin.client()
    upload(client, image.id, store="fast")
    copy_image(admin, image, ["ceph"])
    ceph.clone(image.id, f"{image.id}-clone")

    refused = client.delete(f"/v2/images/{image.id}")

    assert refused.status_code == 409
    assert (tmp_path / "fast" / image.id).read_bytes() == DATA
    assert ceph.names(image.id) == [image.id, f"{image.id}-clone"]
    removed = client.delete(f"/v2/stores/ceph/{image.id}", HTTP_ACCEPT=JSON)
    assert removed.status_code == 409
    assert error_message(removed).startswith(
        f"The data for Image {image.id} could not be deleted because it is in use: "
    )


def copy_image(admin, image, stores: list[str]):
    response = admin.client().post(
        f"/v2/images/{image.id}/import",
        data=json.dumps({"method": {"name": "copy-image"}, "stores": stores}),
        content_type="application/json",
        HTTP_ACCEPT=JSON,
    )
    assert response.status_code == 202, response.content
    task = Task.objects.filter(image_id=image.id).order_by("-created_at").first()
    assert (task.status, task.message) == ("success", "")


def test_copy_image_file_to_rbd_then_rbd_to_rbd_inside_ceph(
    admin, ceph, second_pool, image, monkeypatch
):
    client = admin.client()
    upload(client, image.id, store="fast")
    copy_image(admin, image, ["ceph"])  # file → rbd: streamed

    def no_streaming(store, image_id, byte_range=None):
        raise AssertionError(f"copy-image read {store.id}: it should have copied inside Ceph")

    monkeypatch.setattr(RbdStore, "read", no_streaming)
    monkeypatch.setattr(FilesystemStore, "read", no_streaming)
    copy_image(admin, image, ["ceph2"])  # rbd → rbd, same cluster: librbd copies
    monkeypatch.undo()

    shown = client.get(f"/v2/images/{image.id}", HTTP_ACCEPT=JSON).json()
    assert sorted(shown["stores"].split(",")) == ["ceph", "ceph2", "fast"]
    assert {entry["metadata"]["store"]: entry["url"] for entry in shown["locations"]} == {
        "fast": all_stores()["fast"].url_for(image.id),
        "ceph": location(ceph, image.id),
        "ceph2": location(ceph, image.id).replace("/images/", "/images2/"),
    }
    with second_pool.image(image.id, snapshot="snap") as copy:
        assert copy.read(0, len(DATA)) == DATA
    with second_pool.image(image.id) as copy:
        assert copy.is_protected_snap("snap")
    assert b"".join(all_stores()["ceph2"].read(image.id)) == DATA


def test_an_upload_over_the_size_cap_leaves_nothing_in_the_pool(owner, ceph, image, settings):
    settings.IMAGE_SIZE_CAP = 2 * MiB

    response = upload(owner.client(), image.id)

    assert response.status_code == 413
    assert reloaded(image).status == "queued"
    assert ceph.names(image.id) == []


@pytest.mark.serial
def test_a_stopped_osd_fails_the_upload_within_the_timeout_and_the_image_returns_to_queued(
    owner, ceph, image
):
    client = owner.client()
    stopped = ceph_aio("stop-osd")
    assert stopped.returncode == 0, stopped.stderr
    try:
        started = time.monotonic()
        response = upload(client, image.id)
        took = time.monotonic() - started
    finally:
        restarted = ceph_aio("start-osd")
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr

    assert response.status_code == 503
    assert error_message(response).startswith("Store ceph is not available: ")
    assert took < 20  # rados_connect_timeout = 5 bounds every librados call on the way
    assert reloaded(image).status == "queued"
    # Only this image's attempts are over: another session may be writing into the pool.
    all_stores()["ceph"].sweep(lambda image_id, attempt: image_id != image.id)
    assert ceph.names(image.id) == []
    assert upload(client, image.id).status_code == 204
    assert ceph.names(image.id) == [image.id]
