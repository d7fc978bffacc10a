"""python-glanceclient's Python API, unchanged, against the live server."""

from __future__ import annotations

import glanceclient
import pytest
from glanceclient import exc

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


def glance_for(live_service, account):
    return glanceclient.Client("2", endpoint=live_service.url, token=account.token)


@pytest.fixture
def user_glance(live_service):
    return glance_for(live_service, live_service.user)


@pytest.fixture
def other_glance(live_service):
    return glance_for(live_service, live_service.other)


def test_create_stores_base_fields_and_custom_properties(live_service, user_glance, unique):
    image = user_glance.images.create(
        name=f"gc-create-{unique}",
        disk_format="qcow2",
        container_format="bare",
        min_ram=512,
        tags=["alpha"],
        build_id="42",
        purpose="ci",
    )

    assert image["name"] == f"gc-create-{unique}"
    assert image["status"] == "queued"
    assert image["visibility"] == "shared"
    assert image["owner"] == live_service.user.project_id
    assert (image["disk_format"], image["container_format"]) == ("qcow2", "bare")
    assert (image["min_ram"], image["min_disk"]) == (512, 0)
    assert (image["build_id"], image["purpose"]) == ("42", "ci")
    assert image["tags"] == ["alpha"]
    stored = user_glance.images.get(image["id"])
    assert (stored["name"], stored["build_id"], stored["purpose"]) == (
        f"gc-create-{unique}",
        "42",
        "ci",
    )


def test_list_pages_through_every_image_once_in_name_order(live_service, user_glance, unique):
    # Created out of name order, so the default created_at ordering would not pass.
    names = [f"gc-page-{unique}-{n}" for n in (3, 0, 4, 1, 2)]
    ids = {name: user_glance.images.create(name=name, tags=[unique])["id"] for name in names}
    mark = live_service.access_log_mark()

    listed = list(
        user_glance.images.list(
            page_size=2, sort_key="name", sort_dir="asc", filters={"tag": [unique]}
        )
    )

    assert [image["id"] for image in listed] == [ids[name] for name in sorted(names)]
    pages = live_service.requests_since(mark, path_prefix="/v2/images?", at_least=3)
    assert len(pages) == 3
    assert all(method == "GET" and "limit=2" in path for method, path, _ in pages)


def test_show_returns_the_image_record(live_service, user_glance, unique):
    created = user_glance.images.create(name=f"gc-show-{unique}", os_distro="debian")

    image = user_glance.images.get(created["id"])

    assert image["id"] == created["id"]
    assert image["name"] == f"gc-show-{unique}"
    assert image["os_distro"] == "debian"
    assert image["owner"] == live_service.user.project_id
    assert image["status"] == "queued"
    assert image["file"] == f"/v2/images/{created['id']}/file"
    assert image["schema"] == "/v2/schemas/image"


def test_update_renames_and_adds_changes_removes_properties(user_glance, unique):
    image = user_glance.images.create(name=f"gc-update-{unique}", stage="beta", keep="yes")

    updated = user_glance.images.update(
        image["id"], name=f"gc-renamed-{unique}", stage="ga", added="new"
    )
    assert updated["name"] == f"gc-renamed-{unique}"
    assert (updated["stage"], updated["added"], updated["keep"]) == ("ga", "new", "yes")

    trimmed = user_glance.images.update(image["id"], remove_props=["stage"])

    stored = user_glance.images.get(image["id"])
    for body in (trimmed, stored):
        assert "stage" not in body
        assert (body["name"], body["added"], body["keep"]) == (f"gc-renamed-{unique}", "new", "yes")


def test_tags_are_added_and_removed(user_glance, unique):
    image = user_glance.images.create(name=f"gc-tags-{unique}")

    user_glance.image_tags.update(image["id"], "red")
    user_glance.image_tags.update(image["id"], "blue")
    assert sorted(user_glance.images.get(image["id"])["tags"]) == ["blue", "red"]

    user_glance.image_tags.delete(image["id"], "red")
    assert user_glance.images.get(image["id"])["tags"] == ["blue"]


def test_share_lets_the_other_project_accept_and_list_the_image(
    live_service, user_glance, other_glance, unique
):
    other_project = live_service.other.project_id
    image = user_glance.images.create(name=f"gc-share-{unique}", visibility="shared")
    with pytest.raises(exc.HTTPNotFound):
        other_glance.images.get(image["id"])

    member = user_glance.image_members.create(image["id"], other_project)
    accepted = other_glance.image_members.update(image["id"], other_project, "accepted")

    assert (member["image_id"], member["member_id"], member["status"]) == (
        image["id"],
        other_project,
        "pending",
    )
    assert accepted["status"] == "accepted"
    members = list(user_glance.image_members.list(image["id"]))
    assert [(m["member_id"], m["status"]) for m in members] == [(other_project, "accepted")]
    assert other_glance.images.get(image["id"])["name"] == f"gc-share-{unique}"
    assert image["id"] in [listed["id"] for listed in other_glance.images.list()]


def test_pending_share_is_readable_but_not_in_the_members_default_list(
    live_service, user_glance, other_glance, unique
):
    image = user_glance.images.create(name=f"gc-pending-{unique}", visibility="shared")

    user_glance.image_members.create(image["id"], live_service.other.project_id)

    assert other_glance.images.get(image["id"])["id"] == image["id"]
    assert image["id"] not in [listed["id"] for listed in other_glance.images.list()]
    pending = other_glance.images.list(filters={"member_status": "pending"})
    assert image["id"] in [listed["id"] for listed in pending]


def test_deactivate_and_reactivate_toggle_the_status(live_service, user_glance, unique):
    image = user_glance.images.create(name=f"gc-deactivate-{unique}")
    # Nothing can upload data yet, so the image is made active in the database.
    live_service.set_status(image["id"], "active")

    user_glance.images.deactivate(image["id"])
    assert user_glance.images.get(image["id"])["status"] == "deactivated"

    user_glance.images.reactivate(image["id"])
    assert user_glance.images.get(image["id"])["status"] == "active"


def test_deactivate_queued_image_is_forbidden(user_glance, unique):
    image = user_glance.images.create(name=f"gc-queued-{unique}")

    with pytest.raises(exc.HTTPForbidden) as refused:
        user_glance.images.deactivate(image["id"])

    assert refused.value.code == 403
    assert "Not allowed to deactivate image in status" in str(refused.value)
    assert user_glance.images.get(image["id"])["status"] == "queued"


def test_delete_then_show_is_not_found(user_glance, unique):
    image = user_glance.images.create(name=f"gc-delete-{unique}")

    user_glance.images.delete(image["id"])

    with pytest.raises(exc.HTTPNotFound):
        user_glance.images.get(image["id"])


def test_unknown_image_id_raises_not_found(user_glance):
    with pytest.raises(exc.HTTPNotFound) as missing:
        user_glance.images.get(UNKNOWN_ID)

    assert missing.value.code == 404
    assert f"No image found with ID {UNKNOWN_ID}" in str(missing.value)


def test_member_cannot_delete_the_owners_shared_image(
    live_service, user_glance, other_glance, unique
):
    image = user_glance.images.create(name=f"gc-nodelete-{unique}", visibility="shared")
    user_glance.image_members.create(image["id"], live_service.other.project_id)
    other_glance.image_members.update(image["id"], live_service.other.project_id, "accepted")

    with pytest.raises(exc.HTTPForbidden) as refused:
        other_glance.images.delete(image["id"])

    assert "not authorized to complete delete_image action" in str(refused.value)
    assert user_glance.images.get(image["id"])["status"] == "queued"
