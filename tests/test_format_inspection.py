"""Format inspection of uploaded data (glance-api-v2.md §6.1, internals §11.1).

The disk images are crafted by ``tests/disk_images.py``; Glance answers refusals with 415.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from images.models import ImageLocation
from tasks.models import Task
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


@pytest.mark.parametrize("container_format", ["ovf", "ova", "docker", "compressed", "ami"])
def test_qcow2_with_backing_file_in_any_container_is_415(
    owner, make_image, store_dir, container_format
):
    # Glance inspects only bare images: this upload becomes active there.
    image = make_image(disk_format="qcow2", container_format=container_format)

    response = upload(owner.client(), image, disk_images.qcow2(GIB, backing_file=BACKING_FILE))

    assert response.status_code == 415
    assert refusal_detail(response) == "Image failed safety checks: backing_file"
    assert_refused(image, store_dir)


def test_vmdk_with_absolute_extent_in_ova_is_415(owner, make_image, store_dir):
    image = make_image(disk_format="vmdk", container_format="ova")
    data = disk_images.vmdk_monolithic_sparse(4096, extent_file="/etc/shadow")

    response = upload(owner.client(), image, data)

    assert response.status_code == 415
    assert refusal_detail(response) == "Image failed safety checks: descriptor"
    assert_refused(image, store_dir)


def test_clean_data_in_a_container_need_not_match_disk_format(owner, make_image, store_dir):
    # An OVA is a tar holding the disk: the inspector sees the wrapper, not the vmdk.
    image = make_image(disk_format="vmdk", container_format="ova")
    data = disk_images.raw()

    response = upload(owner.client(), image, data)

    assert response.status_code == 204
    assert_active(image, data, store_dir, virtual_size=None)


def test_qcow2_declared_raw_is_415_when_raw_match_required(owner, make_image, store_dir, settings):
    settings.REQUIRE_RAW_FORMAT_MATCH = True
    image = make_image(disk_format="raw", container_format="bare")

    response = upload(owner.client(), image, disk_images.qcow2(GIB))

    assert response.status_code == 415
    assert refusal_detail(response) == "Image disk_format raw does not match stream data qcow2"
    assert_refused(image, store_dir)


def test_partitioned_raw_disk_declared_raw_passes_when_raw_match_required(
    owner, make_image, store_dir, settings
):
    # The inspector calls any MBR disk "gpt": its bytes are the disk all the same.
    settings.REQUIRE_RAW_FORMAT_MATCH = True
    image = make_image(disk_format="raw", container_format="bare")
    data = disk_images.mbr_disk()

    response = upload(owner.client(), image, data)

    assert response.status_code == 204
    assert_active(image, data, store_dir, virtual_size=len(data))


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


# --- staged and imported data ------------------------------------------------------------------


def stage_and_import(persona, image, data):
    client = persona.client()
    staged = client.put(
        f"/v2/images/{image.id}/stage", data=data, content_type=OCTET, HTTP_ACCEPT=JSON
    )
    assert staged.status_code == 204
    return client.post(
        f"/v2/images/{image.id}/import",
        data=json.dumps({"method": {"name": "glance-direct"}}),
        content_type="application/json",
        HTTP_ACCEPT=JSON,
    )


def test_staged_qcow2_with_backing_file_in_ovf_fails_its_import(
    owner, make_image, store_dir, data_dir
):
    image = make_image(disk_format="qcow2", container_format="ovf")
    data = disk_images.qcow2(GIB, backing_file=BACKING_FILE)

    response = stage_and_import(owner, image, data)

    assert response.status_code == 202
    task = Task.objects.get(image_id=image.id)
    assert (task.status, task.message) == ("failure", "Image failed safety checks: backing_file")
    assert reloaded(image).status == "uploading"
    assert (data_dir / "staging" / image.id).read_bytes() == data
    assert files_in(store_dir) == []


def test_staged_header_smuggling_with_backing_file_fails_without_format_match(
    owner, make_image, store_dir, settings
):
    # qcow2 header + MBR boot signature: two formats match, one of them unsafe.
    settings.REQUIRE_IMAGE_FORMAT_MATCH = False
    image = make_image(disk_format="raw", container_format="bare")
    data = bytearray(disk_images.qcow2(GIB, backing_file=BACKING_FILE))
    data[510:512] = disk_images.mbr_disk()[510:512]
    data[446:462] = disk_images.mbr_disk()[446:462]

    response = stage_and_import(owner, image, bytes(data))

    assert response.status_code == 202
    task = Task.objects.get(image_id=image.id)
    assert (task.status, task.message) == ("failure", "Image failed safety checks: backing_file")
    assert files_in(store_dir) == []


def test_staged_qcow2_declared_raw_fails_import_when_raw_match_required(
    owner, make_image, store_dir, settings
):
    settings.REQUIRE_RAW_FORMAT_MATCH = True
    image = make_image(disk_format="raw", container_format="bare")

    stage_and_import(owner, image, disk_images.qcow2(GIB))

    task = Task.objects.get(image_id=image.id)
    assert (task.status, task.message) == (
        "failure",
        "Image disk_format raw does not match stream data qcow2",
    )
    assert reloaded(image).status == "uploading"
