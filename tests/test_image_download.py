"""GET /v2/images/{id}/file (glance-api-v2.md §6.2, status rules §4.3)."""

from __future__ import annotations

import hashlib

import pytest

from images.models import Image, ImageLocation
from tests.support import JSON, glance_error

OCTET = "application/octet-stream"
ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"
MISSING_ID = "00000000-0000-4000-8000-000000000000"


def download(client, image_id, **headers):
    headers.setdefault("HTTP_ACCEPT", JSON)
    return client.get(f"/v2/images/{image_id}/file", **headers)


def body_of(response) -> bytes:
    """The whole response body, streamed or not; the file behind it is closed afterwards."""
    try:
        if response.streaming:
            return b"".join(response.streaming_content)
        return response.content
    finally:
        response.close()


@pytest.fixture
def uploaded(owner, make_image, member) -> Image:
    """A shared image holding the 26 letters, uploaded through the API."""
    image = make_image(
        disk_format="raw",
        container_format="bare",
        visibility="shared",
        members={member.project_id: "accepted"},
    )
    response = owner.client().put(f"/v2/images/{image.id}/file", data=ALPHABET, content_type=OCTET)
    assert response.status_code == 204
    return image


def test_download_returns_the_bytes_with_glance_headers(owner, uploaded):
    response = download(owner.client(), uploaded.id)

    assert response.status_code == 200
    assert body_of(response) == ALPHABET
    assert response["Content-Type"] == OCTET
    assert response["Content-Length"] == "26"
    assert response["Content-MD5"] == hashlib.md5(ALPHABET).hexdigest()
    for absent in ("Content-Disposition", "Accept-Ranges", "ETag", "Last-Modified"):
        assert absent not in response


def test_download_by_member_of_shared_image(member, uploaded):
    response = download(member.client(), uploaded.id)

    assert response.status_code == 200
    assert body_of(response) == ALPHABET


def test_download_without_checksum_sends_no_content_md5(owner, make_image, data_dir):
    image = make_image(status="active", size=26, disk_format="raw", container_format="bare")
    path = data_dir / "images" / image.id
    path.parent.mkdir()
    path.write_bytes(ALPHABET)
    ImageLocation.objects.create(image=image, store="file", url=path.as_uri())

    response = download(owner.client(), image.id)

    assert response.status_code == 200
    assert body_of(response) == ALPHABET
    assert "Content-MD5" not in response


@pytest.mark.parametrize("status", ["queued", "saving", "uploading", "importing", "killed"])
def test_download_without_data_is_204(owner, make_image, status):
    image = make_image(status=status, disk_format="raw", container_format="bare")

    response = download(owner.client(), image.id)

    assert response.status_code == 204
    assert body_of(response) == b""
    assert "Content-MD5" not in response


def test_download_when_store_lost_the_file_is_204(owner, uploaded, data_dir):
    (data_dir / "images" / uploaded.id).unlink()

    response = download(owner.client(), uploaded.id)

    assert response.status_code == 204
    assert body_of(response) == b""


# --- ranges ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "content", "content_range"),
    [
        ("bytes=3-10", b"DEFGHIJK", "bytes 3-10/26"),
        ("bytes=-5", b"VWXYZ", "bytes 21-25/26"),
        ("bytes=20-", b"UVWXYZ", "bytes 20-25/26"),
        ("bytes=0-0", b"A", "bytes 0-0/26"),
        ("bytes=25-99", b"Z", "bytes 25-25/26"),
    ],
)
def test_download_single_range_is_206(owner, uploaded, header, content, content_range):
    response = download(owner.client(), uploaded.id, HTTP_RANGE=header)

    assert response.status_code == 206
    assert body_of(response) == content
    assert response["Content-Range"] == content_range
    assert response["Content-Length"] == str(len(content))
    assert response["Content-Type"] == OCTET
    # Content-MD5 is always the whole image's checksum.
    assert response["Content-MD5"] == hashlib.md5(ALPHABET).hexdigest()


def test_download_legacy_content_range_request_header_is_206(owner, uploaded):
    response = download(owner.client(), uploaded.id, HTTP_CONTENT_RANGE="bytes 3-10/26")

    assert response.status_code == 206
    assert body_of(response) == b"DEFGHIJK"
    assert response["Content-Range"] == "bytes 3-10/26"


@pytest.mark.parametrize("header", ["bytes=10-5", "bytes=30-", "bytes=26-", "items=1-2"])
def test_download_unsatisfiable_range_is_416(owner, uploaded, header):
    response = download(owner.client(), uploaded.id, HTTP_RANGE=header)

    assert response.status_code == 416
    assert response.json()["code"] == "416 Requested Range Not Satisfiable"


def test_download_multiple_ranges_is_400(owner, uploaded):
    response = download(owner.client(), uploaded.id, HTTP_RANGE="bytes=0-1,5-6")

    assert response.status_code == 400
    assert response.json() == glance_error(
        400,
        "Requests with multiple ranges are not supported in Glance. You may make multiple "
        "single-range requests instead.",
    )


# --- deactivated images and policy -----------------------------------------------------------


def test_download_deactivated_by_non_admin_is_403(owner, uploaded):
    Image.objects.filter(pk=uploaded.pk).update(status="deactivated")

    response = download(owner.client(), uploaded.id)

    assert response.status_code == 403
    assert response.json() == glance_error(
        403, "The requested image has been deactivated. Image data download is forbidden."
    )


def test_download_deactivated_by_admin_is_200(admin, uploaded):
    Image.objects.filter(pk=uploaded.pk).update(status="deactivated")

    response = download(admin.client(), uploaded.id)

    assert response.status_code == 200
    assert body_of(response) == ALPHABET


def test_download_by_reader_only_is_403(reader, uploaded):
    response = download(reader.client(), uploaded.id)

    assert response.status_code == 403
    assert response.json() == glance_error(
        403, "You are not authorized to complete download_image action."
    )


def test_download_invisible_image_is_404(outsider, uploaded):
    response = download(outsider.client(), uploaded.id)

    assert response.status_code == 404
    assert response.json() == glance_error(404, f"No image found with ID {uploaded.id}")


def test_download_missing_image_is_404(owner):
    response = download(owner.client(), MISSING_ID)

    assert response.status_code == 404
    assert response.json() == glance_error(404, f"No image found with ID {MISSING_ID}")


def test_download_deleted_image_is_404(owner, uploaded):
    owner.client().delete(f"/v2/images/{uploaded.id}")

    response = download(owner.client(), uploaded.id)

    assert response.status_code == 404


def test_download_with_a_body_is_400(owner, uploaded):
    response = owner.client().generic(
        "GET", f"/v2/images/{uploaded.id}/file", b"x", content_type=OCTET, HTTP_ACCEPT=JSON
    )

    assert response.status_code == 400
    assert response.json() == glance_error(400, "A body is not expected with this request.")
