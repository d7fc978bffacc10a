"""Format inspection of uploaded data (glance-api-v2.md §6.1, internals §11.1).

The disk images are crafted by ``tests/disk_images.py``; Glance answers refusals with 415.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from images.models import ImageLocation
from tests import disk_images
from tests.support import JSON, reloaded

OCTET = "application/octet-stream"
GIB = 1024**3
BACKING_FILE = "/var/lib/nova/instances/other-tenant/disk"


@pytest.fixture
def store_dir(data_dir) -> Path:
    return data_dir / "images"


def upload(client, image, data):
    return client.put(
        f"/v2/images/{image.id}/file", data=data, content_type=OCTET, HTTP_ACCEPT=JSON
    )


def refusal_detail(response) -> str:
    """The reason behind a 415: WebOb's default line, then the detail."""
    message = response.json()["message"]
    explanation, _, detail = message.partition("<br /><br />")
    assert explanation.strip() == (
        "The request media type application/octet-stream is not supported by this server."
    )
    return detail.strip()


def files_in(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir()) if directory.exists() else []


def assert_refused(image, store_dir):
    row = reloaded(image)
    assert (row.status, row.size, row.virtual_size, row.checksum) == ("queued", None, None, None)
    assert not ImageLocation.objects.filter(image=image).exists()
    assert files_in(store_dir) == []


def assert_active(image, data: bytes, store_dir, virtual_size):
    row = reloaded(image)
    assert (row.status, row.size, row.virtual_size) == ("active", len(data), virtual_size)
    assert row.checksum == hashlib.md5(data).hexdigest()
    assert (store_dir / image.id).read_bytes() == data


# --- accepted --------------------------------------------------------------------------------


def test_qcow2_declared_qcow2_takes_virtual_size_from_header(owner, make_image, store_dir):
    image = make_image(disk_format="qcow2", container_format="bare")
    data = disk_images.qcow2(10 * GIB)

    response = upload(owner.client(), image, data)

    assert response.status_code == 204
    assert_active(image, data, store_dir, virtual_size=10 * GIB)


def test_vmdk_with_relative_extent_takes_virtual_size_from_header(owner, make_image, store_dir):
    image = make_image(disk_format="vmdk", container_format="bare")
    data = disk_images.vmdk_monolithic_sparse(4096, extent_file="disk.vmdk")

    response = upload(owner.client(), image, data)

    assert response.status_code == 204
    assert_active(image, data, store_dir, virtual_size=4096 * 512)


def test_raw_declared_raw_has_virtual_size_of_its_bytes(owner, make_image, store_dir):
    image = make_image(disk_format="raw", container_format="bare")
    data = disk_images.raw(3000)

    response = upload(owner.client(), image, data)

    assert response.status_code == 204
    assert_active(image, data, store_dir, virtual_size=3000)


def test_qcow2_declared_raw_is_accepted_as_raw_bytes(owner, make_image, store_dir):
    image = make_image(disk_format="raw", container_format="bare")
    data = disk_images.qcow2(10 * GIB)

    response = upload(owner.client(), image, data)

    assert response.status_code == 204
    assert_active(image, data, store_dir, virtual_size=len(data))


def test_raw_data_for_uninspectable_format_has_no_virtual_size(owner, make_image, store_dir):
    image = make_image(disk_format="ami", container_format="bare")
    data = disk_images.raw()

    response = upload(owner.client(), image, data)

    assert response.status_code == 204
    assert_active(image, data, store_dir, virtual_size=None)


def test_non_bare_container_is_not_inspected(owner, make_image, store_dir):
    image = make_image(disk_format="qcow2", container_format="ovf")
    data = disk_images.qcow2(GIB, backing_file=BACKING_FILE)

    response = upload(owner.client(), image, data)

    assert response.status_code == 204
    assert_active(image, data, store_dir, virtual_size=None)


def test_mismatch_allowed_when_format_match_not_required(owner, make_image, store_dir, settings):
    settings.REQUIRE_IMAGE_FORMAT_MATCH = False
    image = make_image(disk_format="qcow2", container_format="bare")
    data = disk_images.raw()

    response = upload(owner.client(), image, data)

    assert response.status_code == 204
    assert_active(image, data, store_dir, virtual_size=None)


# --- refused ---------------------------------------------------------------------------------


def test_qcow2_with_backing_file_is_415(owner, make_image, store_dir):
    image = make_image(disk_format="qcow2", container_format="bare")

    response = upload(owner.client(), image, disk_images.qcow2(GIB, backing_file=BACKING_FILE))

    assert response.status_code == 415
    assert refusal_detail(response) == "Image failed safety checks: backing_file"
    assert_refused(image, store_dir)


def test_qcow2_with_external_data_file_is_415(owner, make_image, store_dir):
    image = make_image(disk_format="qcow2", container_format="bare")

    response = upload(owner.client(), image, disk_images.qcow2(GIB, external_data_file=True))

    assert response.status_code == 415
    assert refusal_detail(response) == "Image failed safety checks: data_file"
    assert_refused(image, store_dir)


def test_vmdk_with_absolute_extent_path_is_415(owner, make_image, store_dir):
    image = make_image(disk_format="vmdk", container_format="bare")
    data = disk_images.vmdk_monolithic_sparse(4096, extent_file="/etc/shadow")

    response = upload(owner.client(), image, data)

    assert response.status_code == 415
    assert refusal_detail(response) == "Image failed safety checks: descriptor"
    assert_refused(image, store_dir)


def test_raw_data_declared_qcow2_is_415(owner, make_image, store_dir):
    image = make_image(disk_format="qcow2", container_format="bare")

    response = upload(owner.client(), image, disk_images.raw())

    assert response.status_code == 415
    assert refusal_detail(response) == "Image disk_format qcow2 does not match stream data raw"
    assert_refused(image, store_dir)


def test_qcow2_data_declared_vmdk_is_415(owner, make_image, store_dir):
    image = make_image(disk_format="vmdk", container_format="bare")

    response = upload(owner.client(), image, disk_images.qcow2(GIB))

    assert response.status_code == 415
    assert refusal_detail(response) == "Image disk_format vmdk does not match stream data qcow2"
    assert_refused(image, store_dir)


def test_qcow2_with_backing_file_declared_raw_is_415(owner, make_image, store_dir):
    # The detected format's safety checks run even when the data is kept as raw bytes.
    image = make_image(disk_format="raw", container_format="bare")

    response = upload(owner.client(), image, disk_images.qcow2(GIB, backing_file=BACKING_FILE))

    assert response.status_code == 415
    assert refusal_detail(response) == "Image failed safety checks: backing_file"
    assert_refused(image, store_dir)


def test_backing_file_refused_when_format_match_not_required(
    owner, make_image, store_dir, settings
):
    settings.REQUIRE_IMAGE_FORMAT_MATCH = False
    image = make_image(disk_format="qcow2", container_format="bare")

    response = upload(owner.client(), image, disk_images.qcow2(GIB, backing_file=BACKING_FILE))

    assert response.status_code == 415
    assert refusal_detail(response) == "Image failed safety checks: backing_file"
    assert_refused(image, store_dir)


def test_refused_image_can_be_uploaded_again(owner, make_image, store_dir):
    image = make_image(disk_format="qcow2", container_format="bare")
    client = owner.client()
    upload(client, image, disk_images.raw())
    data = disk_images.qcow2(GIB)

    response = upload(client, image, data)

    assert response.status_code == 204
    assert_active(image, data, store_dir, virtual_size=GIB)
