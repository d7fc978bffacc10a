"""PUT /v2/images/{id}/file (glance-api-v2.md §6.1, internals §8 hashing, §9.1 limits)."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from images import services
from images.models import Image, ImageLocation
from tests.support import JSON, glance_error, reloaded

OCTET = "application/octet-stream"
ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"
MISSING_ID = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def store_dir(data_dir) -> Path:
    return data_dir / "images"


@pytest.fixture
def image(make_image):
    return make_image(disk_format="raw", container_format="bare")


def upload(client, image_id, data=ALPHABET, content_type=OCTET, **headers):
    headers.setdefault("HTTP_ACCEPT", JSON)
    return client.put(
        f"/v2/images/{image_id}/file", data=data, content_type=content_type, **headers
    )


def files_in(directory: Path) -> list[str]:
    """Every file in a store directory, hidden ``.partial`` leftovers included."""
    return sorted(path.name for path in directory.iterdir()) if directory.exists() else []


def assert_reverted(image, store_dir):
    """A refused upload leaves the image uploadable again and no bytes anywhere."""
    row = reloaded(image)
    assert (row.status, row.size, row.virtual_size, row.checksum) == ("queued", None, None, None)
    assert (row.os_hash_algo, row.os_hash_value) == (None, None)
    assert not ImageLocation.objects.filter(image=image).exists()
    assert files_in(store_dir) == []


def add_stored_data(image: Image, *stores: str) -> None:
    """Record ``image`` as held by ``stores`` (what counts towards the storage quota)."""
    for store in stores:
        ImageLocation.objects.create(image=image, store=store, url=f"file:///{store}/{image.id}")


class ReaderThatDeletesTheImage(io.BytesIO):
    """A request body whose first read deletes the image, as a concurrent DELETE would."""

    def __init__(self, image_id: str, data: bytes):
        super().__init__(data)
        self.image_id = image_id
        self.deleted = False

    def read(self, size: int | None = -1) -> bytes:
        if not self.deleted:
            services.delete_image(Image.objects.get(pk=self.image_id))
            self.deleted = True
        return super().read(size)


# --- success ----------------------------------------------------------------------------------


def test_upload_activates_image_with_size_and_hashes(owner, image):
    response = upload(owner.client(), image.id)

    assert response.status_code == 204
    assert response.content == b""
    row = reloaded(image)
    assert row.status == "active"
    assert row.size == 26
    assert row.checksum == hashlib.md5(ALPHABET).hexdigest()
    assert row.os_hash_algo == "sha512"
    assert row.os_hash_value == hashlib.sha512(ALPHABET).hexdigest()


def test_upload_writes_the_bytes_into_the_store(owner, image, store_dir):
    upload(owner.client(), image.id)

    assert files_in(store_dir) == [image.id]
    assert (store_dir / image.id).read_bytes() == ALPHABET
    location = ImageLocation.objects.get(image=image)
    assert (location.store, location.url) == ("file", (store_dir / image.id).as_uri())


def test_upload_uses_configured_hashing_algorithm(owner, image, settings):
    settings.HASHING_ALGORITHM = "sha256"

    response = upload(owner.client(), image.id)

    assert response.status_code == 204
    row = reloaded(image)
    assert (row.os_hash_algo, row.os_hash_value) == ("sha256", hashlib.sha256(ALPHABET).hexdigest())
    assert row.checksum == hashlib.md5(ALPHABET).hexdigest()


def test_upload_shows_in_image_body(owner, image):
    upload(owner.client(), image.id)

    body = owner.client().get(f"/v2/images/{image.id}").json()

    assert body["status"] == "active"
    assert body["size"] == 26
    assert body["virtual_size"] == 26
    assert body["checksum"] == hashlib.md5(ALPHABET).hexdigest()
    assert body["os_hash_algo"] == "sha512"
    assert body["os_hash_value"] == hashlib.sha512(ALPHABET).hexdigest()


def test_upload_by_admin_into_someone_elses_image(admin, image):
    response = upload(admin.client(), image.id)

    assert response.status_code == 204
    assert reloaded(image).status == "active"


def test_upload_media_type_parameters_are_ignored(owner, image):
    response = upload(owner.client(), image.id, content_type=f"{OCTET}; charset=binary")

    assert response.status_code == 204
    assert reloaded(image).status == "active"


def test_upload_without_content_length_streams_to_the_end(owner, image, store_dir):
    # Chunked uploads (python-glanceclient) announce no size at all.
    response = upload(
        owner.client(),
        image.id,
        CONTENT_LENGTH="",
        **{"wsgi.input": io.BytesIO(ALPHABET * 3)},
    )

    assert response.status_code == 204
    assert reloaded(image).size == 78
    assert (store_dir / image.id).read_bytes() == ALPHABET * 3


def test_upload_store_header_is_ignored_with_a_single_store(owner, image, store_dir):
    response = upload(owner.client(), image.id, HTTP_X_IMAGE_META_STORE="nowhere")

    assert response.status_code == 204
    assert files_in(store_dir) == [image.id]


# --- request refusals -------------------------------------------------------------------------


def test_upload_other_content_type_is_415(owner, image, store_dir):
    response = upload(owner.client(), image.id, content_type="text/plain")

    assert response.status_code == 415
    assert response.json()["message"].startswith(
        "The request media type text/plain is not supported by this server."
    )
    assert_reverted(image, store_dir)


def test_upload_without_content_type_is_415(owner, image, store_dir):
    response = owner.client().generic(
        "PUT", f"/v2/images/{image.id}/file", ALPHABET, content_type="", HTTP_ACCEPT=JSON
    )

    assert response.status_code == 415
    assert response.json()["code"] == "415 Unsupported Media Type"
    assert_reverted(image, store_dir)


@pytest.mark.parametrize(
    "fields",
    [{"container_format": "bare"}, {"disk_format": "raw"}, {}],
    ids=["disk", "container", "both"],
)
def test_upload_without_formats_is_400_and_stays_queued(owner, make_image, store_dir, fields):
    image = make_image(**fields)

    response = upload(owner.client(), image.id)

    assert response.status_code == 400
    assert response.json() == glance_error(
        400, "Properties disk_format, container_format must be set prior to saving data."
    )
    assert_reverted(image, store_dir)


def test_upload_to_active_image_is_409_and_keeps_data(owner, image, store_dir):
    client = owner.client()
    upload(client, image.id)

    response = upload(client, image.id, data=b"something else entirely")

    assert response.status_code == 409
    assert response.json() == glance_error(
        409, "Image status transition from active to saving is not allowed"
    )
    row = reloaded(image)
    assert (row.status, row.size) == ("active", 26)
    assert row.checksum == hashlib.md5(ALPHABET).hexdigest()
    assert row.os_hash_value == hashlib.sha512(ALPHABET).hexdigest()
    assert files_in(store_dir) == [image.id]
    assert (store_dir / image.id).read_bytes() == ALPHABET


@pytest.mark.parametrize("status", ["saving", "uploading", "importing", "deactivated", "killed"])
def test_upload_needs_queued_status(owner, make_image, store_dir, status):
    image = make_image(status=status, disk_format="raw", container_format="bare")

    response = upload(owner.client(), image.id)

    assert response.status_code == 409
    assert response.json() == glance_error(
        409, f"Image status transition from {status} to saving is not allowed"
    )
    assert reloaded(image).status == status
    assert files_in(store_dir) == []


@pytest.mark.parametrize("size", ["twenty-six", "2.5", "0x1a"])
def test_upload_unparseable_size_header_is_400(owner, image, store_dir, size):
    response = upload(owner.client(), image.id, HTTP_X_OPENSTACK_IMAGE_SIZE=size)

    assert response.status_code == 400
    assert response.json() == glance_error(400, "Invalid or missing image size in request headers.")
    assert_reverted(image, store_dir)


@pytest.mark.parametrize("announced", [25, 27, 100])
def test_upload_announced_size_must_match_data(owner, image, store_dir, announced):
    response = upload(owner.client(), image.id, HTTP_X_OPENSTACK_IMAGE_SIZE=str(announced))

    assert response.status_code == 400
    assert response.json() == glance_error(
        400,
        f"Size of the uploaded data (26 bytes) does not match the announced size ({announced} bytes).",
    )
    assert_reverted(image, store_dir)


def test_upload_announced_size_header_wins_over_content_length(owner, image):
    response = upload(owner.client(), image.id, HTTP_X_OPENSTACK_IMAGE_SIZE="26")

    assert response.status_code == 204
    assert reloaded(image).size == 26


# --- size cap and storage quota ----------------------------------------------------------------


def test_upload_exactly_at_size_cap_is_accepted(owner, image, settings, store_dir):
    settings.IMAGE_SIZE_CAP = 26

    response = upload(owner.client(), image.id)

    assert response.status_code == 204
    assert reloaded(image).status == "active"
    assert files_in(store_dir) == [image.id]


def test_upload_over_size_cap_is_413(owner, image, settings, store_dir):
    settings.IMAGE_SIZE_CAP = 25

    response = upload(owner.client(), image.id)

    assert response.status_code == 413
    assert response.json() == glance_error(
        413, "The incoming image is too large: The provided image is too large."
    )
    assert_reverted(image, store_dir)


def test_upload_over_size_cap_without_announced_size_is_413(owner, image, settings, store_dir):
    settings.IMAGE_SIZE_CAP = 25

    response = upload(
        owner.client(), image.id, CONTENT_LENGTH="", **{"wsgi.input": io.BytesIO(ALPHABET)}
    )

    assert response.status_code == 413
    assert response.json() == glance_error(
        413, "The incoming image is too large: The provided image is too large."
    )
    assert_reverted(image, store_dir)


@pytest.fixture
def sixty_bytes_stored(make_image):
    """Project A already keeps 60 bytes: a 30-byte image held by two stores."""
    stored = make_image(status="active", size=30, disk_format="raw", container_format="bare")
    add_stored_data(stored, "file", "other")
    return stored


def test_upload_filling_storage_quota_exactly_is_accepted(
    owner, image, settings, store_dir, sixty_bytes_stored
):
    settings.USER_STORAGE_QUOTA = 86

    response = upload(owner.client(), image.id)

    assert response.status_code == 204
    assert reloaded(image).status == "active"
    assert files_in(store_dir) == [image.id]


def test_upload_over_storage_quota_is_413(owner, image, settings, store_dir, sixty_bytes_stored):
    settings.USER_STORAGE_QUOTA = 85

    response = upload(owner.client(), image.id)

    assert response.status_code == 413
    assert response.json() == glance_error(
        413,
        "Image exceeds the storage quota: The size of the data 26 will exceed the limit. "
        "25 bytes remaining.",
    )
    assert_reverted(image, store_dir)


def test_upload_over_storage_quota_without_announced_size_is_413(
    owner, image, settings, store_dir, sixty_bytes_stored
):
    settings.USER_STORAGE_QUOTA = 85

    response = upload(
        owner.client(), image.id, CONTENT_LENGTH="", **{"wsgi.input": io.BytesIO(ALPHABET)}
    )

    assert response.status_code == 413
    assert response.json()["message"].startswith("Image exceeds the storage quota: ")
    assert_reverted(image, store_dir)


def test_upload_storage_quota_ignores_other_projects(
    owner, outsider, image, make_image, settings, store_dir
):
    settings.USER_STORAGE_QUOTA = 26
    theirs = make_image(owner=outsider.project_id, status="active", size=1000)
    add_stored_data(theirs, "file")

    response = upload(owner.client(), image.id)

    assert response.status_code == 204
    assert reloaded(image).status == "active"


def test_upload_storage_quota_ignores_deleted_images(owner, image, make_image, settings):
    settings.USER_STORAGE_QUOTA = 26
    gone = make_image(status="deleted", deleted=True, size=1000)
    add_stored_data(gone, "file")

    response = upload(owner.client(), image.id)

    assert response.status_code == 204


# --- who may upload ---------------------------------------------------------------------------


def test_upload_by_reader_only_is_403(reader, image, store_dir):
    response = upload(reader.client(), image.id)

    assert response.status_code == 403
    assert response.json() == glance_error(
        403, "You are not authorized to complete upload_image action."
    )
    assert_reverted(image, store_dir)


def test_upload_by_member_of_shared_image_is_403(member, make_image, store_dir):
    image = make_image(
        visibility="shared",
        disk_format="raw",
        container_format="bare",
        members={member.project_id: "accepted"},
    )

    response = upload(member.client(), image.id)

    assert response.status_code == 403
    assert response.json() == glance_error(
        403, "You are not authorized to complete upload_image action."
    )
    assert_reverted(image, store_dir)


def test_upload_to_invisible_image_is_404(outsider, image, store_dir):
    response = upload(outsider.client(), image.id)

    assert response.status_code == 404
    assert response.json() == glance_error(404, f"No image found with ID {image.id}")
    assert_reverted(image, store_dir)


def test_upload_to_missing_image_is_404(owner):
    response = upload(owner.client(), MISSING_ID)

    assert response.status_code == 404
    assert response.json() == glance_error(404, f"No image found with ID {MISSING_ID}")


# --- delete during and after upload -----------------------------------------------------------


def test_upload_of_image_deleted_meanwhile_is_410_and_leaves_nothing(owner, image, store_dir):
    body = ReaderThatDeletesTheImage(image.id, ALPHABET)

    response = upload(owner.client(), image.id, **{"wsgi.input": body})

    assert body.deleted
    assert response.status_code == 410
    assert response.json() == glance_error(
        410,
        f"Image {image.id} could not be found after upload. The image may have been deleted "
        "during the upload, cleaning up the chunks uploaded.",
    )
    row = reloaded(image)
    assert (row.deleted, row.status) == (True, "deleted")
    assert not ImageLocation.objects.filter(image=image).exists()
    assert files_in(store_dir) == []


def test_delete_of_active_image_removes_its_file(owner, image, store_dir):
    client = owner.client()
    upload(client, image.id)
    assert files_in(store_dir) == [image.id]

    response = client.delete(f"/v2/images/{image.id}")

    assert response.status_code == 204
    assert files_in(store_dir) == []
    assert not ImageLocation.objects.filter(image=image).exists()


def test_reupload_after_refusal_succeeds(owner, image, store_dir):
    client = owner.client()
    upload(client, image.id, HTTP_X_OPENSTACK_IMAGE_SIZE="99")

    response = upload(client, image.id)

    assert response.status_code == 204
    assert reloaded(image).status == "active"
    assert (store_dir / image.id).read_bytes() == ALPHABET


def test_upload_of_no_bytes_is_active_with_no_virtual_size(owner, image):
    # Django's test client sends no Content-Length for an empty body; a real client does.
    response = upload(owner.client(), image.id, data=b"", CONTENT_LENGTH="0")

    assert response.status_code == 204
    shown = owner.client().get(f"/v2/images/{image.id}", HTTP_ACCEPT=JSON).json()
    assert (shown["status"], shown["size"], shown["virtual_size"]) == ("active", 0, None)
    assert shown["checksum"] == hashlib.md5(b"").hexdigest()
