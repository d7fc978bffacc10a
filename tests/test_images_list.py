"""GET /v2/images: visibility rules, filters, sorting, marker paging and links (reference §5.2)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def get(persona, query: str = ""):
    return persona.client().get(f"/v2/images{query}", HTTP_ACCEPT="application/json")


def ids(response) -> list[str]:
    return [image["id"] for image in response.json()["images"]]


def ids_of(*images) -> list[str]:
    return [image.id for image in images]


def assert_error(response, status: int, message: str) -> None:
    assert response.status_code == status
    assert response.json()["message"] == f"{message}<br /><br />\n\n\n"


def follow_pages(persona, query: str) -> list[list[str]]:
    """Every page from `query` on, following `next` until it is absent."""
    pages, url = [], f"/v2/images{query}"
    while url is not None:
        response = persona.client().get(url)
        assert response.status_code == 200
        pages.append(ids(response))
        url = response.json().get("next")
        assert len(pages) < 10, "next never disappeared"
    return pages


# --- who sees what (§3.4) ------------------------------------------------------------------


@pytest.fixture
def world(make_image, member, outsider, admin):
    """One image per visibility rule, created one minute apart in this order."""
    b, c = member.project_id, outsider.project_id
    specs = {
        "a_private": {"visibility": "private", "members": {b: "accepted"}},
        "a_shared_accepted": {"visibility": "shared", "members": {b: "accepted"}},
        "a_shared_pending": {"visibility": "shared", "members": {b: "pending"}},
        "a_shared_rejected": {"visibility": "shared", "members": {b: "rejected"}},
        "a_community": {"visibility": "community"},
        "a_public": {"visibility": "public"},
        "c_private": {"visibility": "private", "owner": c},
        "c_community": {"visibility": "community", "owner": c},
        "c_public": {"visibility": "public", "owner": c},
        "b_shared": {"visibility": "shared", "owner": b},
        "admin_community": {"visibility": "community", "owner": admin.project_id},
        "a_deleted": {"visibility": "public", "status": "deleted", "deleted": True},
        "a_killed": {"visibility": "public", "status": "killed"},
        "a_pending_delete": {"visibility": "public", "status": "pending_delete"},
    }
    return {
        name: make_image(name=name, created_at=at(minute), **fields)
        for minute, (name, fields) in enumerate(specs.items())
    }


def newest_first(world, *names: str) -> list[str]:
    images = sorted((world[name] for name in names), key=lambda i: i.created_at, reverse=True)
    return ids_of(*images)


OWNER_DEFAULT = (
    "a_private",
    "a_shared_accepted",
    "a_shared_pending",
    "a_shared_rejected",
    "a_community",
    "a_public",
    "c_public",
)


def test_list_owner_sees_own_images_and_other_projects_public(owner, world):
    response = get(owner)

    assert response.status_code == 200
    assert ids(response) == newest_first(world, *OWNER_DEFAULT)


def test_list_reader_role_lists_like_its_project(reader, world):
    assert ids(get(reader)) == newest_first(world, *OWNER_DEFAULT)


def test_list_outsider_sees_public_and_own_but_not_other_community(outsider, world):
    expected = newest_first(world, "a_public", "c_private", "c_community", "c_public")

    assert ids(get(outsider)) == expected


@pytest.mark.parametrize(
    ("query", "shared_with_me"),
    [
        ("", ["a_shared_accepted"]),
        ("?member_status=accepted", ["a_shared_accepted"]),
        ("?member_status=pending", ["a_shared_pending"]),
        ("?member_status=rejected", ["a_shared_rejected"]),
        ("?member_status=all", ["a_shared_accepted", "a_shared_pending", "a_shared_rejected"]),
    ],
)
def test_list_member_sees_shared_images_by_member_status(member, world, query, shared_with_me):
    response = get(member, query)

    assert response.status_code == 200
    assert ids(response) == newest_first(world, *shared_with_me, "a_public", "c_public", "b_shared")


ADMIN_DEFAULT = (
    "a_private",
    "a_shared_accepted",
    "a_shared_pending",
    "a_shared_rejected",
    "a_public",
    "c_private",
    "c_public",
    "b_shared",
    "admin_community",
)


@pytest.mark.parametrize("query", ["", "?member_status=pending"])
def test_list_admin_sees_every_project_but_not_others_community(admin, world, query):
    assert ids(get(admin, query)) == newest_first(world, *ADMIN_DEFAULT)


@pytest.mark.parametrize(
    ("persona", "query", "expected"),
    [
        ("outsider", "?visibility=community", ["a_community", "c_community", "admin_community"]),
        ("admin", "?visibility=community", ["a_community", "c_community", "admin_community"]),
        ("outsider", "?visibility=public", ["a_public", "c_public"]),
        ("owner", "?visibility=private", ["a_private"]),
        ("member", "?visibility=shared", ["a_shared_accepted", "b_shared"]),
        (
            "member",
            "?visibility=shared&member_status=all",
            ["a_shared_accepted", "a_shared_pending", "a_shared_rejected", "b_shared"],
        ),
        (
            "outsider",
            "?visibility=all",
            ["a_community", "a_public", "c_private", "c_community", "c_public", "admin_community"],
        ),
        ("admin", "?visibility=all", [*ADMIN_DEFAULT, "a_community", "c_community"]),
    ],
)
def test_list_visibility_filter(personas, world, persona, query, expected):
    response = get(personas[persona], query)

    assert response.status_code == 200
    assert ids(response) == newest_first(world, *expected)


def test_list_only_hides_killed_deleted_and_pending_delete(owner, make_image):
    statuses = ["queued", "saving", "uploading", "importing", "active", "deactivated"]
    listed = [make_image(status=status, created_at=at(i)) for i, status in enumerate(statuses)]
    make_image(status="killed")
    make_image(status="pending_delete")
    make_image(status="deleted", deleted=True)

    assert ids(get(owner, "?visibility=all")) == ids_of(*reversed(listed))


def test_list_invalid_visibility_is_400(owner):
    assert_error(get(owner, "?visibility=everyone"), 400, "Invalid visibility value: everyone")


def test_list_invalid_member_status_is_400(owner):
    assert_error(get(owner, "?member_status=maybe"), 400, "Invalid status: maybe")


# --- os_hidden and protected -----------------------------------------------------------------


@pytest.fixture
def hidden_and_shown(make_image):
    return make_image(os_hidden=True, created_at=at(1)), make_image(created_at=at(0))


@pytest.mark.parametrize("query", ["", "?os_hidden=false", "?os_hidden=FALSE"])
def test_list_leaves_out_hidden_images_by_default(owner, hidden_and_shown, query):
    assert ids(get(owner, query)) == [hidden_and_shown[1].id]


@pytest.mark.parametrize("value", ["true", "True"])
def test_list_os_hidden_true_returns_only_hidden_images(owner, hidden_and_shown, value):
    assert ids(get(owner, f"?os_hidden={value}")) == [hidden_and_shown[0].id]


def test_list_invalid_os_hidden_is_400(owner):
    message = "Invalid value 'maybe' for 'os_hidden' filter. Valid values are 'true' or 'false'."

    assert_error(get(owner, "?os_hidden=maybe"), 400, message)


def test_list_protected_filter(owner, make_image):
    guarded = make_image(protected=True, created_at=at(1))
    loose = make_image(created_at=at(0))

    assert ids(get(owner, "?protected=true")) == [guarded.id]
    assert ids(get(owner, "?protected=false")) == [loose.id]


def test_list_protected_is_case_sensitive(owner):
    message = "Invalid value 'True' for 'protected' filter. Valid values are 'true' or 'false'."

    assert_error(get(owner, "?protected=True"), 400, message)


# --- field filters ---------------------------------------------------------------------------


@pytest.fixture
def named(make_image):
    names = [
        "web",
        "web:server",
        "glass, darkly",
        "share me",
        'say "hi"',
        "2024-01-01T10:00:00",
        "",
    ]
    return {name: make_image(name=name, created_at=at(i)) for i, name in enumerate(names)}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?name=web", ["web"]),
        ("?name=eq:web", ["web"]),
        ("?name=eq:web:server", ["web:server"]),
        ("?name=in:web,web:server", ["web:server", "web"]),
        ('?name=in:"glass, darkly",share%20me', ["share me", "glass, darkly"]),
        ('?name=in:"say \\"hi\\"",nothing', ['say "hi"']),
        ("?name=2024-01-01T10:00:00", ["2024-01-01T10:00:00"]),
        # A trailing comma ends the list; it does not add an empty name.
        ("?name=in:", []),
        ("?name=in:web,", ["web"]),
    ],
)
def test_list_name_filter(owner, named, query, expected):
    response = get(owner, query)

    assert response.status_code == 200
    assert ids(response) == [named[name].id for name in expected]


def test_list_name_with_colon_needs_eq(owner, named):
    assert_error(get(owner, "?name=web:server"), 400, "Unable to filter by unknown operator 'web'.")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ('a"b",c', "There is no comma before opening quotation mark."),
        ('"a"b,c', "There is no comma after closing quotation mark."),
        ('"a,b', "The quote is not closed."),
    ],
)
def test_list_in_list_quote_errors(owner, value, reason):
    response = owner.client().get(
        "/v2/images", {"name": f"in:{value}"}, HTTP_ACCEPT="application/json"
    )

    assert_error(response, 400, f"Invalid filter value {value}. {reason}")


def test_list_id_status_and_format_filters(owner, make_image):
    raw = make_image(status="active", disk_format="raw", container_format="bare", created_at=at(2))
    iso = make_image(status="queued", disk_format="iso", container_format="ovf", created_at=at(1))
    qcow = make_image(status="saving", disk_format="qcow2", container_format="bare", created_at=T0)

    assert ids(get(owner, f"?id=in:{raw.id},{qcow.id}")) == ids_of(raw, qcow)
    assert ids(get(owner, f"?id={iso.id}")) == ids_of(iso)
    assert ids(get(owner, "?status=in:queued,active")) == ids_of(raw, iso)
    assert ids(get(owner, "?container_format=bare")) == ids_of(raw, qcow)
    assert ids(get(owner, "?disk_format=eq:qcow2")) == ids_of(qcow)
    assert ids(get(owner, "?disk_format=in:iso,qcow2")) == ids_of(iso, qcow)


@pytest.fixture
def timeline(make_image):
    return [make_image(created_at=at(m), updated_at=at(m + 60)) for m in (0, 10, 20)]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?created_at=gt:2024-01-01T00:10:00Z", [2]),
        ("?created_at=gte:2024-01-01T00:10:00Z", [2, 1]),
        ("?created_at=eq:2024-01-01T00:10:00Z", [1]),
        ("?created_at=2024-01-01T00:10:00Z", [1]),
        ("?created_at=neq:2024-01-01T00:10:00Z", [2, 0]),
        ("?created_at=lt:2024-01-01T00:10:00", [0]),
        ("?created_at=lte:2024-01-01T00:10:00Z", [1, 0]),
        ("?created_at=gte:2024-01-01T02:10:00%2B02:00", [2, 1]),
        ("?updated_at=lt:2024-01-01T01:10:00Z", [0]),
    ],
)
def test_list_timestamp_filters(owner, timeline, query, expected):
    response = get(owner, query)

    assert response.status_code == 200
    assert ids(response) == [timeline[i].id for i in expected]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "?created_at=gt:yesterday",
            'Bad "created_at" query filter format. Use ISO 8601 DateTime notation.',
        ),
        (
            "?updated_at=soon",
            'Bad "updated_at" query filter format. Use ISO 8601 DateTime notation.',
        ),
        ("?created_at=after:2024-01-01T00:00:00Z", "Unable to filter on a unknown operator."),
        # An offset that takes the time past year 1 or 9999 was a 500 (OverflowError).
        (
            "?created_at=gt:0001-01-01T00:00:00%2B01:00",
            'Bad "created_at" query filter format. Use ISO 8601 DateTime notation.',
        ),
        (
            "?updated_at=lt:9999-12-31T23:59:59-01:00",
            'Bad "updated_at" query filter format. Use ISO 8601 DateTime notation.',
        ),
    ],
)
def test_list_timestamp_filter_errors(owner, query, message):
    assert_error(get(owner, query), 400, message)


def test_list_numeric_range_filters(owner, make_image):
    small = make_image(size=10, virtual_size=100, min_ram=256, created_at=at(3))
    medium = make_image(size=20, virtual_size=200, min_ram=512, created_at=at(2))
    large = make_image(size=30, virtual_size=300, min_ram=1024, created_at=at(1))
    make_image(size=None, created_at=at(0))

    assert ids(get(owner, "?size_min=20")) == ids_of(medium, large)
    assert ids(get(owner, "?size_max=20")) == ids_of(small, medium)
    assert ids(get(owner, "?size_min=20&size_max=20")) == ids_of(medium)
    assert ids(get(owner, "?virtual_size_min=300")) == ids_of(large)
    assert ids(get(owner, "?min_ram_max=512&min_ram_min=512")) == ids_of(medium)


@pytest.mark.parametrize("query", ["?size_min=big", "?min_disk_max=1.5"])
def test_list_non_numeric_range_is_400(owner, query):
    assert_error(get(owner, query), 400, "Unable to filter on a range with a non-numeric value.")


def test_list_tags_must_all_match(owner, make_image):
    x_only = make_image(tags=["x"], created_at=at(2))
    both = make_image(tags=["x", "y"], created_at=at(1))
    make_image(tags=["y"])

    assert ids(get(owner, "?tag=x")) == ids_of(x_only, both)
    assert ids(get(owner, "?tag=x&tag=y")) == ids_of(both)
    assert ids(get(owner, "?tag=x&tag=z")) == []


def test_list_checksum_hash_and_owner_equality(owner, outsider, make_image):
    mine = make_image(checksum="a" * 32, os_hash_value="f" * 128, visibility="public")
    theirs = make_image(owner=outsider.project_id, visibility="public", created_at=at(0))

    assert ids(get(owner, f"?checksum={'a' * 32}")) == ids_of(mine)
    assert ids(get(owner, f"?os_hash_value={'f' * 128}")) == ids_of(mine)
    assert ids(get(owner, f"?owner={outsider.project_id}")) == ids_of(theirs)


def test_list_other_keys_match_columns_then_custom_properties(owner, make_image):
    x86 = make_image(properties={"os_distro": "ubuntu", "arch": "x86_64"}, created_at=at(1))
    arm = make_image(
        properties={"os_distro": "ubuntu", "arch": "aarch64"}, min_disk=20, created_at=T0
    )

    assert ids(get(owner, "?os_distro=ubuntu")) == ids_of(x86, arm)
    assert ids(get(owner, "?os_distro=ubuntu&arch=aarch64")) == ids_of(arm)
    assert ids(get(owner, "?min_disk=20")) == ids_of(arm)
    assert ids(get(owner, "?no_such_key=1")) == []
    assert ids(get(owner, "?min_disk=twenty")) == []


def test_list_changes_since_is_gone(owner):
    message = 'The "changes-since" filter is no longer available on v2.'

    assert_error(get(owner, "?changes-since=2024-01-01T00:00:00Z"), 400, message)


# --- limit -----------------------------------------------------------------------------------


@pytest.fixture
def three(make_image):
    """Three images, newest first."""
    return [make_image(created_at=at(m)) for m in (2, 1, 0)]


def test_list_default_limit_comes_from_settings(owner, three, settings):
    settings.LIMIT_PARAM_DEFAULT = 2

    response = get(owner)

    assert ids(response) == ids_of(*three[:2])
    assert response.json()["next"] == f"/v2/images?marker={three[1].id}"


def test_list_limit_is_capped_but_kept_literal_in_links(owner, three, settings):
    settings.API_LIMIT_MAX = 2

    response = get(owner, "?limit=5")

    assert ids(response) == ids_of(*three[:2])
    assert response.json()["first"] == "/v2/images?limit=5"
    assert response.json()["next"] == f"/v2/images?limit=5&marker={three[1].id}"


def test_list_limit_zero_is_an_empty_page_without_next(owner, three):
    response = get(owner, "?limit=0")

    assert response.status_code == 200
    assert response.json()["images"] == []
    assert response.json()["first"] == "/v2/images?limit=0"
    assert "next" not in response.json()


@pytest.mark.parametrize(
    ("limit", "message"),
    [("ten", "limit param must be an integer"), ("-1", "limit param must be positive")],
)
def test_list_invalid_limit_is_400(owner, limit, message):
    assert_error(get(owner, f"?limit={limit}"), 400, message)


# --- sorting ---------------------------------------------------------------------------------


@pytest.fixture
def sortable(make_image):
    """Same name/size pairs created at different times, to expose the tie-breakers."""
    specs = [("b", 1), ("a", 2), ("b", 2), ("a", 1), ("b", 2)]
    return [make_image(name=n, size=s, created_at=at(i)) for i, (n, s) in enumerate(specs)]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?sort_key=name&sort_dir=asc", [1, 3, 0, 2, 4]),
        ("?sort=name:asc", [1, 3, 0, 2, 4]),
        ("?sort_key=name", [4, 2, 0, 3, 1]),
        ("?sort=name", [4, 2, 0, 3, 1]),
        ("?sort_key=name&sort_key=size&sort_dir=asc", [3, 1, 0, 2, 4]),
        ("?sort_key=name&sort_key=size&sort_dir=asc&sort_dir=desc", [1, 3, 4, 2, 0]),
        ("?sort=name:asc,size:desc", [1, 3, 4, 2, 0]),
        ("?sort=size:asc,name", [0, 3, 4, 2, 1]),
        ("?sort_key=created_at&sort_dir=asc", [0, 1, 2, 3, 4]),
    ],
)
def test_list_sort_order_with_tie_breakers(owner, sortable, query, expected):
    response = get(owner, query)

    assert response.status_code == 200
    assert ids(response) == [sortable[i].id for i in expected]


def test_list_sort_ties_on_created_at_fall_back_to_id(owner, make_image):
    twins = [make_image(created_at=T0) for _ in range(3)]

    assert ids(get(owner)) == sorted(ids_of(*twins), reverse=True)
    assert ids(get(owner, "?sort_dir=asc")) == sorted(ids_of(*twins))


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "?sort_key=foo",
            "Invalid sort key: foo. It must be one of the following: name, status, "
            "container_format, disk_format, size, id, created_at, updated_at.",
        ),
        (
            "?sort=owner:asc",
            "Invalid sort key: owner. It must be one of the following: name, status, "
            "container_format, disk_format, size, id, created_at, updated_at.",
        ),
        ("?sort_dir=up", "Invalid sort direction: up"),
        ("?sort=name:up", "Invalid sort direction: up"),
        (
            "?sort_key=name&sort_dir=asc&sort_dir=desc",
            "Number of sort dirs does not match the number of sort keys",
        ),
        ("?sort=name:asc&sort_key=size", "Old and new sorting syntax cannot be combined"),
        ("?sort=name:asc&sort_dir=asc", "Old and new sorting syntax cannot be combined"),
    ],
)
def test_list_sort_errors(owner, query, message):
    assert_error(get(owner, query), 400, message)


# --- paging and links ------------------------------------------------------------------------


def test_list_pages_default_sort_until_next_disappears(owner, make_image):
    images = [make_image(created_at=at(m)) for m in (0, 1, 1, 1, 2)]
    expected = [i.id for i in sorted(images, key=lambda i: (i.created_at, i.id), reverse=True)]

    pages = follow_pages(owner, "?limit=2")

    assert pages == [expected[0:2], expected[2:4], expected[4:]]


@pytest.fixture
def nullable_names(make_image):
    names = [None, "b", "a", None, "b"]
    return [make_image(name=name, created_at=at(i)) for i, name in enumerate(names)]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # NULL sorts as the smallest name on every database.
        ("?limit=2&sort=name:asc", [0, 3, 2, 1, 4]),
        ("?limit=2&sort=name:desc", [4, 1, 2, 3, 0]),
        ("?limit=2&sort_key=name&sort_dir=asc", [0, 3, 2, 1, 4]),
    ],
)
def test_list_pages_by_name_with_duplicates_and_nulls(owner, nullable_names, query, expected):
    pages = follow_pages(owner, query)

    order = [nullable_names[i].id for i in expected]
    assert pages == [order[0:2], order[2:4], order[4:]]


def test_list_full_last_page_gets_next_and_the_empty_page_does_not(owner, make_image):
    images = [make_image(created_at=at(m)) for m in (1, 0)]

    first = get(owner, "?limit=2")
    after = owner.client().get(first.json()["next"])

    assert ids(first) == ids_of(*images)
    assert first.json()["next"] == f"/v2/images?limit=2&marker={images[1].id}"
    assert after.status_code == 200
    assert after.json()["images"] == []
    assert "next" not in after.json()


def test_list_links_keep_repeated_parameters_and_drop_marker(owner, make_image):
    images = [make_image(tags=["x", "y"], created_at=at(m)) for m in (2, 1, 0)]

    page1 = get(owner, "?tag=x&tag=y&limit=1")
    page2 = owner.client().get(page1.json()["next"])

    assert page1.json()["first"] == "/v2/images?tag=x&tag=y&limit=1"
    assert page1.json()["next"] == f"/v2/images?tag=x&tag=y&limit=1&marker={images[0].id}"
    assert ids(page2) == ids_of(images[1])
    assert page2.json()["first"] == "/v2/images?tag=x&tag=y&limit=1"
    assert page2.json()["next"] == f"/v2/images?tag=x&tag=y&limit=1&marker={images[1].id}"


def test_list_first_link_without_parameters_has_no_query(owner, three):
    body = get(owner).json()

    assert body["first"] == "/v2/images"
    assert "next" not in body


def test_list_unknown_marker_is_400(owner):
    assert_error(get(owner, "?marker=nope"), 400, "No image found with ID nope")


def test_list_deleted_marker_is_400_for_users_but_pages_for_admins(owner, admin, make_image):
    older, gone, newer = (make_image(created_at=at(m)) for m in (0, 1, 2))
    gone.mark_deleted()
    gone.save()

    assert_error(get(owner, f"?marker={gone.id}"), 400, f"No image found with ID {gone.id}")
    assert ids(get(admin, f"?marker={gone.id}")) == ids_of(older)
    assert ids(get(admin)) == ids_of(newer, older)


def test_list_invisible_marker_is_403(outsider, make_image):
    private = make_image(visibility="private")

    assert_error(
        get(outsider, f"?marker={private.id}"), 403, f"Forbidden to access image {private.id}"
    )


# --- query count -----------------------------------------------------------------------------


def make_rich_images(make_image, member, count: int) -> None:
    for _ in range(count):
        make_image(
            properties={"os_distro": "ubuntu"}, tags=["x"], members={member.project_id: "accepted"}
        )


def test_list_query_count_does_not_grow_with_page_size(
    owner, member, make_image, django_assert_max_num_queries
):
    make_rich_images(make_image, member, 2)
    get(owner)  # warm per-process caches (policy rules) so both counts compare like for like
    with CaptureQueriesContext(connection) as small_page:
        assert len(get(owner).json()["images"]) == 2
    make_rich_images(make_image, member, 28)

    with django_assert_max_num_queries(len(small_page.captured_queries)):
        response = get(owner, "?limit=30")

    assert len(response.json()["images"]) == 30
