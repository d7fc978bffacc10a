"""``DELETE /v2/stores/{store_id}/{image_id}`` (v2.10): one store's copy of an image goes."""

from __future__ import annotations

import pytest

from images.models import ImageLocation
from tests.support import JSON, error_message, reloaded

DATA = b"bytes kept in two stores"


@pytest.fixture
def two_stores(settings, tmp_path):
    settings.ENABLED_BACKENDS = {"fast": str(tmp_path / "fast"), "cheap": str(tmp_path / "cheap")}
    settings.DEFAULT_BACKEND = "fast"
    return tmp_path


@pytest.fixture
def in_both(admin, make_image, two_stores):
    """An active image of project A whose data is in both stores."""
    image = make_image(disk_format="raw", container_format="bare", visibility="public")
    for store in ("fast", "cheap"):
        (two_stores / store).mkdir(exist_ok=True)
        (two_stores / store / image.id).write_bytes(DATA)
        ImageLocation.objects.create(
            image=image, store=store, url=(two_stores / store / image.id).as_uri()
        )
    image.status, image.size = "active", len(DATA)
    image.save()
    return image


def delete_from(persona, store: str, image_id: str):
    return persona.client().delete(f"/v2/stores/{store}/{image_id}", HTTP_ACCEPT=JSON)


def test_admin_removes_one_copy_and_downloads_come_from_the_other(admin, in_both, two_stores):
    response = delete_from(admin, "fast", in_both.id)

    assert response.status_code == 204
    assert not (two_stores / "fast" / in_both.id).exists()
    assert list(in_both.locations.values_list("store", flat=True)) == ["cheap"]
    shown = admin.client().get(f"/v2/images/{in_both.id}", HTTP_ACCEPT=JSON).json()
    assert shown["stores"] == "cheap"
    download = admin.client().get(f"/v2/images/{in_both.id}/file")
    assert b"".join(download.streaming_content) == DATA


def test_owner_is_refused_by_the_default_policy(owner, in_both, two_stores):
    response = delete_from(owner, "fast", in_both.id)

    assert response.status_code == 403
    assert (two_stores / "fast" / in_both.id).exists()


def test_unknown_store_is_a_conflict(admin, in_both):
    response = delete_from(admin, "tape", in_both.id)

    assert response.status_code == 409
    assert error_message(response) == "The selected store tape is not available on this node."


def test_the_last_copy_cannot_be_removed(admin, in_both, two_stores):
    assert delete_from(admin, "fast", in_both.id).status_code == 204

    response = delete_from(admin, "cheap", in_both.id)

    assert response.status_code == 403
    assert error_message(response) == (
        "Cannot delete image data from the only store containing it. Consider deleting the "
        "image instead."
    )
    assert (two_stores / "cheap" / in_both.id).read_bytes() == DATA


def test_image_not_in_that_store_is_not_found(admin, make_image, two_stores):
    image = make_image(disk_format="raw", container_format="bare", status="active")
    for store in ("fast", "cheap"):
        ImageLocation.objects.create(image=image, store=store, url=f"file:///{store}/{image.id}")
    ImageLocation.objects.filter(image=image, store="cheap").update(store="elsewhere")

    response = delete_from(admin, "cheap", image.id)

    assert response.status_code == 404
    assert error_message(response) == f"Image {image.id} is not stored in store cheap."


def test_inactive_image_is_a_conflict(admin, in_both):
    in_both.status = "deactivated"
    in_both.save()

    response = delete_from(admin, "fast", in_both.id)

    assert response.status_code == 409
    assert error_message(response) == (
        "It's not allowed to remove image data from store if image status is not 'active'"
    )
    assert reloaded(in_both).locations.count() == 2


def test_unknown_image_is_not_found(admin, two_stores):
    response = delete_from(admin, "fast", "0f6c9e1e-0000-4000-8000-000000000000")

    assert response.status_code == 404
    assert error_message(response) == ("Failed to find image 0f6c9e1e-0000-4000-8000-000000000000")


def advertised(anonymous) -> list[str]:
    return [entry["id"] for entry in anonymous.get("/versions").json()["versions"]]


def test_versions_of_the_multi_store_calls_are_listed_only_with_several_stores(
    anonymous, settings, two_stores
):
    with_stores = advertised(anonymous)
    settings.ENABLED_BACKENDS = {}

    assert {"v2.8", "v2.10", "v2.11"} <= set(with_stores)
    assert not {"v2.8", "v2.10", "v2.11"} & set(advertised(anonymous))
    assert with_stores[0] == "v2.12"
