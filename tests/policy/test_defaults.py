from __future__ import annotations

import pytest

from imageservice.identity.credentials import Credentials
from imageservice.policy.defaults import DEFAULT_RULES
from imageservice.policy.engine import Policy
from tests.policy import (
    ADMIN,
    OUTSIDER,
    OWNER,
    PROJECT_A,
    PROJECT_B,
    READER,
    SERVICE,
    image_target,
)

ADMIN_CHECK = "rule:context_is_admin"
MEMBER_CHECK = "role:member and project_id:%(project_id)s"
VISIBLE_CHECK = (
    "project_id:%(project_id)s or project_id:%(member_id)s or 'community':%(visibility)s"
    " or 'public':%(visibility)s or 'shared':%(visibility)s"
)
ADMIN_ONLY = [
    "publicize_image",
    "copy_image",
    "delete_image_location",
    "tasks_api_access",
    "manage_image_cache",
    "cache_image",
    "cache_list",
    "cache_delete",
    "cache_clean",
    "cache_prune",
    "list_cached_nodes",
]
OWNER_MEMBER_RULES = [
    "modify_image",
    "communitize_image",
    "delete_image",
    "upload_image",
    "set_image_location",
    "add_member",
    "delete_member",
    "deactivate",
    "reactivate",
]


@pytest.fixture(scope="module")
def policy() -> Policy:
    return Policy(policy_file="")


# --- the table -----------------------------------------------------------------------------


def test_defaults_expand_building_blocks_exactly():
    assert DEFAULT_RULES["add_image"] == (
        f"{ADMIN_CHECK} or ({MEMBER_CHECK} and project_id:%(owner)s)"
    )
    assert DEFAULT_RULES["get_image"] == f"{ADMIN_CHECK} or (role:reader and ({VISIBLE_CHECK}))"
    assert DEFAULT_RULES["get_images"] == (
        f"{ADMIN_CHECK} or (role:reader and project_id:%(project_id)s)"
    )
    assert DEFAULT_RULES["download_image"] == (
        f"{ADMIN_CHECK} or (role:member and ({VISIBLE_CHECK}))"
    )
    assert DEFAULT_RULES["get_members"] == (
        f"{ADMIN_CHECK} or role:reader and (project_id:%(project_id)s or project_id:%(member_id)s)"
    )
    assert DEFAULT_RULES["add_image_location"] == (
        f"rule:service_api or ({MEMBER_CHECK} and project_id:%(owner)s)"
    )


def test_defaults_base_rules():
    assert DEFAULT_RULES["default"] == ""
    assert DEFAULT_RULES["context_is_admin"] == "role:admin"
    assert DEFAULT_RULES["service_api"] == "role:service or role:admin"
    assert DEFAULT_RULES["fetch_image_location"] == "rule:service_api"
    assert DEFAULT_RULES["stores_info_detail"] == f"{ADMIN_CHECK} or rule:service_api"
    assert DEFAULT_RULES["modify_member"] == (
        f"{ADMIN_CHECK} or (role:member and project_id:%(member_id)s)"
    )


@pytest.mark.parametrize("name", ADMIN_ONLY)
def test_defaults_admin_only_rules(name):
    assert DEFAULT_RULES[name] == ADMIN_CHECK


@pytest.mark.parametrize("name", OWNER_MEMBER_RULES)
def test_defaults_admin_or_member_rules(name):
    assert DEFAULT_RULES[name] == f"{ADMIN_CHECK} or ({MEMBER_CHECK})"


def test_defaults_same_for_paired_rules():
    assert DEFAULT_RULES["download_from_store"] == DEFAULT_RULES["download_image"]
    assert DEFAULT_RULES["get_member"] == DEFAULT_RULES["get_members"]
    assert DEFAULT_RULES["get_image_location"] == DEFAULT_RULES["get_images"]


@pytest.mark.parametrize(
    "name", ["get_task", "get_tasks", "add_task", "modify_task", "get_schemas", "get_discovery"]
)
def test_defaults_open_rules(name, policy):
    nobody = Credentials()

    assert DEFAULT_RULES[name] == ""
    assert policy.authorize(name, nobody, {}) is True


def test_defaults_name_set_is_complete():
    expected = {"default", "context_is_admin", "service_api", "add_image", "get_image"}
    expected |= {"get_images", "download_image", "download_from_store", "get_image_location"}
    expected |= {"add_image_location", "fetch_image_location", "get_member", "get_members"}
    expected |= {"modify_member", "stores_info_detail", "get_task", "get_tasks", "add_task"}
    expected |= {"modify_task", "get_schemas", "get_discovery"}
    expected |= set(ADMIN_ONLY) | set(OWNER_MEMBER_RULES)

    assert set(DEFAULT_RULES) == expected


# --- personas ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ADMIN_ONLY)
def test_admin_only_rules_allow_admin_alone(name, policy):
    target = image_target()

    assert policy.authorize(name, ADMIN, target) is True
    assert policy.authorize(name, OWNER, target) is False


@pytest.mark.parametrize("name", OWNER_MEMBER_RULES)
def test_owner_member_rules_allow_owner_not_outsider_or_reader(name, policy):
    target = image_target(owner=PROJECT_A)

    assert policy.authorize(name, ADMIN, image_target(owner=PROJECT_B)) is True
    assert policy.authorize(name, OWNER, target) is True
    assert policy.authorize(name, OUTSIDER, target) is False
    assert policy.authorize(name, READER, target) is False


def test_add_image_member_only_for_own_project(policy):
    own = {"project_id": PROJECT_A, "owner": PROJECT_A, "visibility": "private"}
    foreign = {"project_id": PROJECT_B, "owner": PROJECT_B, "visibility": "private"}

    assert policy.authorize("add_image", OWNER, own) is True
    assert policy.authorize("add_image", OWNER, foreign) is False
    assert policy.authorize("add_image", READER, own) is False
    assert policy.authorize("add_image", ADMIN, foreign) is True


def test_get_image_private_hidden_from_outsider(policy):
    target = image_target(visibility="private")

    assert policy.authorize("get_image", OWNER, target) is True
    assert policy.authorize("get_image", READER, target) is True
    assert policy.authorize("get_image", OUTSIDER, target) is False


def test_get_image_shared_visible_to_member_project(policy):
    shared_with_b = image_target(visibility="shared", member_id=PROJECT_B)

    assert policy.authorize("get_image", OUTSIDER, shared_with_b) is True


@pytest.mark.parametrize("visibility", ["public", "community"])
def test_get_image_public_and_community_visible_to_outsider(visibility, policy):
    assert policy.authorize("get_image", OUTSIDER, image_target(visibility=visibility)) is True


def test_get_image_requires_reader_role(policy):
    member_only = Credentials(user_id="m", project_id=PROJECT_A, roles=frozenset({"member"}))

    assert policy.authorize("get_image", member_only, image_target()) is False


def test_get_images_needs_reader_in_own_project(policy):
    assert policy.authorize("get_images", READER, {"project_id": PROJECT_A}) is True
    assert policy.authorize("get_images", SERVICE, {"project_id": "service"}) is False


def test_download_image_denied_to_reader_only(policy):
    target = image_target()

    assert policy.authorize("download_image", READER, target) is False
    assert policy.authorize("download_image", OWNER, target) is True


def test_download_image_shared_with_outsider_project(policy):
    assert policy.authorize("download_image", OUTSIDER, image_target()) is False
    target = image_target(visibility="shared", member_id=PROJECT_B)
    assert policy.authorize("download_image", OUTSIDER, target) is True


def test_copy_image_admin_only(policy):
    target = image_target(visibility="public")

    assert policy.authorize("copy_image", ADMIN, target) is True
    assert policy.authorize("copy_image", OWNER, target) is False


def test_tasks_api_access_admin_only(policy):
    assert policy.authorize("tasks_api_access", ADMIN, {}) is True
    assert policy.authorize("tasks_api_access", OWNER, {}) is False
    assert policy.authorize("tasks_api_access", SERVICE, {}) is False


def test_modify_member_by_member_project_not_owner(policy):
    target = image_target(visibility="shared", member_id=PROJECT_B)

    assert policy.authorize("modify_member", OUTSIDER, target) is True
    assert policy.authorize("modify_member", OWNER, target) is False


def test_get_member_by_owner_or_member_project(policy):
    target = image_target(visibility="shared", member_id=PROJECT_B)
    third = Credentials(user_id="c", project_id="C", roles=frozenset({"member", "reader"}))

    assert policy.authorize("get_member", OWNER, target) is True
    assert policy.authorize("get_member", OUTSIDER, target) is True
    assert policy.authorize("get_member", third, target) is False


def test_service_rules_allow_service_role(policy):
    target = image_target()

    assert policy.authorize("fetch_image_location", SERVICE, target) is True
    assert policy.authorize("fetch_image_location", OWNER, target) is False
    assert policy.authorize("add_image_location", SERVICE, target) is True
    assert policy.authorize("add_image_location", OWNER, target) is True
    assert policy.authorize("stores_info_detail", SERVICE, {}) is True
    assert policy.authorize("stores_info_detail", OWNER, {}) is False
