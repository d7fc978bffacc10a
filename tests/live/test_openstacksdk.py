"""openstacksdk's image proxy, unchanged, against the live server."""

from __future__ import annotations

import openstack
import pytest
from openstack import exceptions

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"

# openstacksdk 4.22 raises its own "removed in SDK 5.0/6.0" warnings from inside ordinary calls
# (InfluxDB on every Connection, find_image's ignore_missing default inside create_image,
# _compute_attributes). They subclass PendingDeprecationWarning, which pyproject's
# DeprecationWarning ignore for openstack.* does not cover.
pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning:openstack.*")


def connect(live_service, account) -> openstack.connection.Connection:
    # admin_token hands its endpoint out verbatim; the image endpoint override is what makes
    # keystoneauth discover the versioned URL from the 300 document at the unversioned root.
    return openstack.connection.Connection(
        auth_type="admin_token",
        auth={"endpoint": live_service.url, "token": account.token},
        image_endpoint_override=live_service.url,
    )


@pytest.fixture
def user_sdk(live_service):
    with connect(live_service, live_service.user) as connection:
        yield connection


@pytest.fixture
def other_sdk(live_service):
    with connect(live_service, live_service.other) as connection:
        yield connection


def test_create_image_stores_custom_properties_as_strings(live_service, user_sdk, unique):
    image = user_sdk.image.create_image(
        name=f"sdk-create-{unique}",
        disk_format="raw",
        container_format="bare",
        min_ram=256,
        properties={"build_id": "42", "purpose": "ci"},
    )

    stored = user_sdk.image.get_image(image.id)
    for body in (image, stored):
        assert body.name == f"sdk-create-{unique}"
        assert (body.disk_format, body.container_format) == ("raw", "bare")
        assert (body.status, body.visibility, body.min_ram) == ("queued", "shared", 256)
        assert body.owner_id == live_service.user.project_id
        # The SDK adds its owner_specified.* properties, empty strings included.
        assert body.properties == {
            "build_id": "42",
            "purpose": "ci",
            "owner_specified.openstack.md5": "",
            "owner_specified.openstack.sha256": "",
            "owner_specified.openstack.object": f"images/sdk-create-{unique}",
        }


def test_images_pages_through_every_image_once_in_name_order(live_service, user_sdk, unique):
    names = [f"sdk-page-{unique}-{n}" for n in (3, 0, 4, 1, 2)]
    ids = {
        name: user_sdk.image.create_image(name=name, tags=[unique], allow_duplicates=True).id
        for name in names
    }
    mark = live_service.access_log_mark()

    listed = list(user_sdk.image.images(limit=2, sort="name:asc", tag=unique))

    assert [image.id for image in listed] == [ids[name] for name in sorted(names)]
    # Three pages (2 + 2 + 1), then one more probe the SDK makes on its own whenever a page
    # without `next` ends a listing that was given a limit.
    pages = live_service.requests_since(mark, path_prefix="/v2/images?", at_least=4)
    assert len(pages) == 4
    assert all(method == "GET" and "limit=2" in path for method, path, _ in pages)


def test_find_and_get_image_return_the_record(live_service, user_sdk, unique):
    created = user_sdk.image.create_image(name=f"sdk-show-{unique}", os_distro="debian")

    found = user_sdk.image.find_image(f"sdk-show-{unique}", ignore_missing=False)
    shown = user_sdk.image.get_image(created.id)

    assert found.id == shown.id == created.id
    assert (shown.name, shown.os_distro, shown.status) == (f"sdk-show-{unique}", "debian", "queued")
    assert shown.file == f"/v2/images/{created.id}/file"


def test_update_image_renames_and_adds_changes_removes_properties(user_sdk, unique):
    image = user_sdk.image.create_image(
        name=f"sdk-update-{unique}", properties={"stage": "beta", "keep": "yes", "gone": "soon"}
    )

    # The SDK diffs the whole properties dict, so pass every property that should stay.
    changed = user_sdk.image.update_image(
        image,
        name=f"sdk-renamed-{unique}",
        properties={**image.properties, "stage": "ga", "added": "new"},
    )
    remaining = {key: value for key, value in changed.properties.items() if key != "gone"}
    trimmed = user_sdk.image.update_image(changed, properties=remaining)

    assert changed.name == f"sdk-renamed-{unique}"
    assert (changed.properties["stage"], changed.properties["added"]) == ("ga", "new")
    stored = user_sdk.image.get_image(image.id)
    for body in (trimmed, stored):
        assert body.name == f"sdk-renamed-{unique}"
        assert "gone" not in body.properties
        assert {key: body.properties[key] for key in ("stage", "added", "keep")} == {
            "stage": "ga",
            "added": "new",
            "keep": "yes",
        }


def test_tags_are_added_and_removed(user_sdk, unique):
    image = user_sdk.image.create_image(name=f"sdk-tags-{unique}")

    user_sdk.image.add_tag(image, "red")
    user_sdk.image.add_tag(image, "blue")
    assert sorted(user_sdk.image.get_image(image.id).tags) == ["blue", "red"]

    user_sdk.image.remove_tag(image, "red")
    assert user_sdk.image.get_image(image.id).tags == ["blue"]


def test_share_lets_the_other_project_accept_and_list_the_image(
    live_service, user_sdk, other_sdk, unique
):
    other_project = live_service.other.project_id
    image = user_sdk.image.create_image(name=f"sdk-share-{unique}", visibility="shared")
    with pytest.raises(exceptions.NotFoundException):
        other_sdk.image.get_image(image.id)

    member = user_sdk.image.add_member(image, member_id=other_project)
    accepted = other_sdk.image.update_member(member, image, status="accepted")

    assert (member.member_id, member.status) == (other_project, "pending")
    assert (accepted.member_id, accepted.status) == (other_project, "accepted")
    members = list(user_sdk.image.members(image))
    assert [(m.member_id, m.status) for m in members] == [(other_project, "accepted")]
    assert other_sdk.image.get_member(other_project, image).status == "accepted"
    assert image.id in [listed.id for listed in other_sdk.image.images()]


def test_delete_image_then_get_is_not_found(user_sdk, unique):
    image = user_sdk.image.create_image(name=f"sdk-delete-{unique}")

    user_sdk.image.delete_image(image)

    with pytest.raises(exceptions.ResourceNotFound):
        user_sdk.image.get_image(image.id)
    with pytest.raises(exceptions.NotFoundException):
        user_sdk.image.find_image(f"sdk-delete-{unique}", ignore_missing=False)


def test_unknown_image_id_raises_not_found(user_sdk):
    with pytest.raises(exceptions.NotFoundException) as missing:
        user_sdk.image.get_image(UNKNOWN_ID)

    assert missing.value.status_code == 404
    assert f"No image found with ID {UNKNOWN_ID}" in str(missing.value)


def test_member_cannot_delete_the_owners_shared_image(live_service, user_sdk, other_sdk, unique):
    other_project = live_service.other.project_id
    image = user_sdk.image.create_image(name=f"sdk-nodelete-{unique}", visibility="shared")
    member = user_sdk.image.add_member(image, member_id=other_project)
    other_sdk.image.update_member(member, image, status="accepted")

    with pytest.raises(exceptions.ForbiddenException) as refused:
        other_sdk.image.delete_image(image)

    assert refused.value.status_code == 403
    assert "not authorized to complete delete_image action" in str(refused.value)
    assert user_sdk.image.get_image(image.id).status == "queued"
