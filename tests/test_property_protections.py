"""Property protections through the API (glance-import-internals.md §5.3, §5.4).

Personas' roles: admin (admin, member, reader), owner and member (member, reader), reader
(reader). The rules below list no catch-all, so an unmatched property is denied to everyone.
"""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command

from images.models import Image, ImageProperty, PropertyProtection
from images.protections import PropertyRules, Section
from imageservice.identity.credentials import Credentials
from tests.support import JSON, error_message, reloaded

V21 = "application/openstack-images-v2.1-json-patch"

RULES = """\
# The seed's example: members read, only admins change.
[property1]
create = admin,service_role
read = admin,service_role,member,_member_
update = admin
delete = admin

# Members may write it but only admins read it back.
[^writeonly_]
create = member
read = admin
update = admin
delete = admin

[^x_]
create = admin,member
read = admin,member
update = admin,member
delete = admin,member

# A role nobody holds: no admin bypass.
[^billing_]
create = billing
read = billing
update = billing
delete = billing
"""


def load(tmp_path, text, rule_format="roles"):
    path = tmp_path / "property-protections.conf"
    path.write_text(text)
    call_command("load_property_protections", str(path), format=rule_format, stdout=StringIO())


@pytest.fixture
def protected(db, tmp_path):
    load(tmp_path, RULES)


def create(persona, **body):
    return persona.client().post(
        "/v2/images", data=json.dumps(body), content_type=JSON, HTTP_ACCEPT=JSON
    )


def patch(persona, image, *operations):
    return persona.client().patch(
        f"/v2/images/{image.id}",
        data=json.dumps(list(operations)),
        content_type=V21,
        HTTP_ACCEPT=JSON,
    )


def stored(image) -> dict[str, str]:
    return reloaded(image).property_dict()


def refused(operation: str, name: str) -> str:
    return f"Property '{name}' is protected: you are not permitted to {operation} it."


# --- no rules: the feature is off ----------------------------------------------------------


def test_no_rules_allows_every_property(owner, make_image):
    image = make_image(properties={"anything": "1"})

    created = create(owner, name="free", property1="a", billing_code="b")
    patched = patch(
        owner,
        image,
        {"op": "replace", "path": "/anything", "value": "2"},
        {"op": "remove", "path": "/anything"},
    )

    assert created.status_code == 201
    assert (created.json()["property1"], created.json()["billing_code"]) == ("a", "b")
    assert patched.status_code == 200
    assert stored(image) == {}


# --- POST /v2/images -----------------------------------------------------------------------


def test_create_with_a_property_the_caller_may_not_create_is_403(protected, owner):
    response = create(owner, name="img", property1="value")

    assert response.status_code == 403
    assert error_message(response) == refused("create", "property1")
    assert not Image.objects.exists()


def test_create_with_an_allowed_property_stores_and_shows_it(protected, owner):
    response = create(owner, name="img", x_flavour="large")

    assert response.status_code == 201
    assert response.json()["x_flavour"] == "large"
    assert Image.objects.get().property_dict() == {"x_flavour": "large"}


def test_create_of_a_property_no_section_matches_is_403_even_for_admin(protected, admin):
    response = create(admin, name="img", unmatched="value")

    assert response.status_code == 403
    assert error_message(response) == refused("create", "unmatched")
    assert not Image.objects.exists()


def test_admin_has_no_bypass_where_no_rule_lists_admin(protected, admin, make_image):
    image = make_image(owner=admin.project_id, properties={"billing_code": "42"})

    created = create(admin, name="img", billing_code="43")
    shown = admin.client().get(f"/v2/images/{image.id}")

    assert created.status_code == 403
    assert "billing_code" not in shown.json()


def test_create_of_a_write_only_property_stores_it_without_showing_it(protected, owner, admin):
    # Glance answers 201 but silently drops the property (§5.4, bug); we keep it.
    response = create(owner, name="img", writeonly_token="secret")

    assert response.status_code == 201
    assert "writeonly_token" not in response.json()
    image = Image.objects.get()
    assert image.property_dict() == {"writeonly_token": "secret"}
    assert admin.client().get(f"/v2/images/{image.id}").json()["writeonly_token"] == "secret"


# --- reads ---------------------------------------------------------------------------------


@pytest.fixture
def image(make_image):
    return make_image(
        name="img",
        properties={"property1": "p", "writeonly_token": "secret", "x_flavour": "large"},
    )


def test_show_omits_properties_the_caller_may_not_read(protected, owner, admin, image):
    mine = owner.client().get(f"/v2/images/{image.id}").json()
    theirs = admin.client().get(f"/v2/images/{image.id}").json()

    assert (mine["property1"], mine["x_flavour"]) == ("p", "large")
    assert "writeonly_token" not in mine
    assert theirs["writeonly_token"] == "secret"


def test_show_to_a_role_no_section_lists_omits_all_protected_properties(protected, reader, image):
    body = reader.client().get(f"/v2/images/{image.id}").json()

    assert {"property1", "writeonly_token", "x_flavour"} & set(body) == set()
    assert body["name"] == "img"


def test_list_omits_properties_the_caller_may_not_read(protected, owner, admin, image):
    mine = owner.client().get("/v2/images").json()["images"]
    theirs = admin.client().get("/v2/images").json()["images"]

    assert [("writeonly_token" in body, body["x_flavour"]) for body in mine] == [(False, "large")]
    assert [body["writeonly_token"] for body in theirs] == ["secret"]


def test_list_filter_on_a_property_the_caller_may_not_read_matches_nothing(
    protected, owner, admin, image
):
    # Otherwise one filter per guess would reveal the value the caller may not read.
    guessed = owner.client().get("/v2/images?writeonly_token=secret")
    wrong = owner.client().get("/v2/images?writeonly_token=other")
    by_admin = admin.client().get("/v2/images?writeonly_token=secret")

    assert (guessed.status_code, guessed.json()["images"]) == (200, [])
    assert wrong.json()["images"] == []
    assert [body["id"] for body in by_admin.json()["images"]] == [image.id]


def test_list_filter_on_a_readable_property_still_matches(protected, owner, image):
    response = owner.client().get("/v2/images?x_flavour=large")

    assert [body["id"] for body in response.json()["images"]] == [image.id]


def test_os_glance_properties_stay_readable_when_no_section_matches(protected, owner, make_image):
    image = make_image(properties={"os_glance_failed_import": "", "my_os_glance_note": "n"})

    body = owner.client().get(f"/v2/images/{image.id}").json()

    assert (body["os_glance_failed_import"], body["my_os_glance_note"]) == ("", "n")


# --- PATCH ---------------------------------------------------------------------------------


def test_patch_of_a_visible_property_keeps_invisible_ones_unchanged(protected, owner, admin, image):
    # Glance writes the caller's filtered view back and so deletes writeonly_token (§5.4, bug).
    response = patch(owner, image, {"op": "add", "path": "/x_colour", "value": "blue"})

    assert response.status_code == 200
    assert response.json()["x_colour"] == "blue"
    assert "writeonly_token" not in response.json()
    assert stored(image) == {
        "property1": "p",
        "writeonly_token": "secret",
        "x_flavour": "large",
        "x_colour": "blue",
    }
    assert admin.client().get(f"/v2/images/{image.id}").json()["writeonly_token"] == "secret"


def test_patch_leaves_hidden_rows_untouched(protected, owner, image):
    hidden = ImageProperty.objects.get(image=image, name="writeonly_token")

    patch(owner, image, {"op": "replace", "path": "/x_flavour", "value": "small"})

    assert ImageProperty.objects.get(image=image, name="writeonly_token").pk == hidden.pk


def test_patch_replace_without_update_permission_is_403(protected, owner, image):
    response = patch(owner, image, {"op": "replace", "path": "/property1", "value": "q"})

    assert response.status_code == 403
    assert error_message(response) == refused("update", "property1")
    assert stored(image)["property1"] == "p"


def test_patch_replace_with_update_permission_is_applied(protected, admin, image):
    response = patch(admin, image, {"op": "replace", "path": "/property1", "value": "q"})

    assert response.status_code == 200
    assert response.json()["property1"] == "q"
    assert stored(image)["property1"] == "q"


def test_patch_replace_of_an_unreadable_property_is_409_as_if_missing(protected, owner, image):
    response = patch(owner, image, {"op": "replace", "path": "/writeonly_token", "value": "x"})

    assert response.status_code == 409
    assert error_message(response) == "Property writeonly_token does not exist."
    assert stored(image)["writeonly_token"] == "secret"


def test_patch_add_on_an_existing_readable_property_needs_update(protected, owner, image):
    response = patch(owner, image, {"op": "add", "path": "/property1", "value": "q"})

    assert response.status_code == 403
    assert error_message(response) == refused("update", "property1")
    assert stored(image)["property1"] == "p"


def test_patch_add_of_a_new_property_without_create_permission_is_403(protected, owner, make_image):
    image = make_image()

    response = patch(owner, image, {"op": "add", "path": "/property1", "value": "q"})

    assert response.status_code == 403
    assert error_message(response) == refused("create", "property1")
    assert stored(image) == {}


def test_patch_add_of_a_new_write_only_property_stores_it_hidden(protected, owner, make_image):
    # Glance answers 500 and writes nothing (§5.4, bug).
    image = make_image(properties={"x_flavour": "large"})

    response = patch(owner, image, {"op": "add", "path": "/writeonly_token", "value": "s"})

    assert response.status_code == 200
    assert "writeonly_token" not in response.json()
    assert stored(image) == {"x_flavour": "large", "writeonly_token": "s"}


def test_patch_add_over_an_existing_hidden_property_needs_update(protected, owner, image):
    # Existence is judged on what is stored: this would overwrite, so it is an update.
    response = patch(owner, image, {"op": "add", "path": "/writeonly_token", "value": "x"})

    assert response.status_code == 403
    assert error_message(response) == refused("update", "writeonly_token")
    assert stored(image)["writeonly_token"] == "secret"


def test_patch_add_then_remove_of_a_hidden_property_removes_it(tmp_path, owner, image):
    load(
        tmp_path, "[^writeonly_]\ncreate = member\nread = admin\nupdate = member\ndelete = member\n"
    )

    response = patch(
        owner,
        image,
        {"op": "add", "path": "/writeonly_token", "value": "x"},
        {"op": "remove", "path": "/writeonly_token"},
    )

    assert response.status_code == 200
    assert "writeonly_token" not in stored(image)


def test_patch_remove_without_delete_permission_is_403(protected, owner, image):
    response = patch(owner, image, {"op": "remove", "path": "/property1"})

    assert response.status_code == 403
    assert error_message(response) == refused("delete", "property1")
    assert stored(image)["property1"] == "p"


def test_patch_remove_of_an_unreadable_property_is_409_as_if_missing(protected, owner, image):
    response = patch(owner, image, {"op": "remove", "path": "/writeonly_token"})

    assert response.status_code == 409
    assert error_message(response) == "Property writeonly_token does not exist."
    assert stored(image)["writeonly_token"] == "secret"


def test_patch_remove_with_delete_permission_removes_it(protected, owner, image):
    response = patch(owner, image, {"op": "remove", "path": "/x_flavour"})

    assert response.status_code == 200
    assert "x_flavour" not in response.json()
    assert stored(image) == {"property1": "p", "writeonly_token": "secret"}


def test_patch_one_refused_operation_leaves_the_image_untouched(protected, owner, image):
    response = patch(
        owner,
        image,
        {"op": "replace", "path": "/x_flavour", "value": "small"},
        {"op": "remove", "path": "/property1"},
    )

    assert response.status_code == 403
    assert stored(image)["x_flavour"] == "large"


def test_patch_of_core_attributes_is_not_governed_by_protections(protected, owner, image):
    response = patch(owner, image, {"op": "replace", "path": "/name", "value": "renamed"})

    assert response.status_code == 200
    assert reloaded(image).name == "renamed"


# --- the policies format -------------------------------------------------------------------

POLICY_RULES = """\
[^x_]
create = context_is_admin
read = @
update = context_is_admin
delete = !
"""


def test_policies_format_asks_the_named_policy_rule(db, tmp_path, owner, admin, make_image):
    load(tmp_path, POLICY_RULES, "policies")
    image = make_image(properties={"x_flavour": "large"})

    by_owner = create(owner, name="img", x_flavour="small")
    by_admin = create(admin, name="img", x_flavour="small")
    shown = owner.client().get(f"/v2/images/{image.id}").json()
    removed = patch(admin, image, {"op": "remove", "path": "/x_flavour"})

    assert by_owner.status_code == 403
    assert by_admin.status_code == 201
    assert shown["x_flavour"] == "large"
    assert removed.status_code == 403
    assert error_message(removed) == refused("delete", "x_flavour")


def test_a_policy_rule_gone_from_the_policy_denies_instead_of_500(db, owner, make_image):
    PropertyProtection.objects.create(
        position=1,
        pattern="^x_",
        rule_format="policies",
        create_rule="no_such_rule",
        read_rule="no_such_rule",
        update_rule="@",
        delete_rule="@",
    )
    image = make_image(properties={"x_flavour": "large"})

    created = create(owner, name="img", x_flavour="small")
    shown = owner.client().get(f"/v2/images/{image.id}")

    assert created.status_code == 403
    assert shown.status_code == 200
    assert "x_flavour" not in shown.json()


def test_a_broken_pattern_row_fails_closed_instead_of_500(db, owner, make_image):
    PropertyProtection.objects.create(
        position=1, pattern="(", create_rule="@", read_rule="@", update_rule="@", delete_rule="@"
    )
    PropertyProtection.objects.create(
        position=2, pattern=".*", create_rule="@", read_rule="@", update_rule="@", delete_rule="@"
    )
    image = make_image(properties={"x_flavour": "large"})

    created = create(owner, name="img", x_flavour="small")
    shown = owner.client().get(f"/v2/images/{image.id}")

    assert created.status_code == 403
    assert "x_flavour" not in shown.json()


# --- imports -------------------------------------------------------------------------------


def test_import_injected_properties_are_not_subject_to_protections(
    protected, owner, make_image, settings
):
    settings.IMAGE_IMPORT_PLUGINS = ["inject_image_metadata"]
    settings.INJECT_METADATA_PROPERTIES = "ingested_by:operator"
    image = make_image(disk_format="raw", container_format="bare")
    owner.client().put(
        f"/v2/images/{image.id}/stage",
        data=b"x" * 1024,
        content_type="application/octet-stream",
        HTTP_ACCEPT=JSON,
    )

    response = owner.client().post(
        f"/v2/images/{image.id}/import",
        data=json.dumps({"method": {"name": "glance-direct"}}),
        content_type=JSON,
        HTTP_ACCEPT=JSON,
    )

    assert response.status_code == 202
    assert reloaded(image).status == "active"
    assert stored(image)["ingested_by"] == "operator"


# --- matching rules (§5.3) -----------------------------------------------------------------


def roles(*names, service=()) -> Credentials:
    return Credentials(roles=frozenset(names), service_roles=frozenset(service))


def section(pattern, create="@", read="@", update="@", delete="@", rule_format="roles"):
    rules = {"create": create, "read": read, "update": update, "delete": delete}
    return Section(pattern, rule_format, rules)


def test_patterns_use_search_semantics():
    rules = PropertyRules([section("x_foo")])

    assert rules.can("read", "ax_foo_bar", roles())
    assert not rules.can("read", "x_fo", roles())


def test_first_matching_section_wins():
    rules = PropertyRules([section(".*", read="admin"), section("^x_", read="@")])

    assert not rules.can("read", "x_flavour", roles("member"))
    assert rules.can("read", "x_flavour", roles("admin"))


def test_no_matching_section_denies_everyone():
    rules = PropertyRules([section("^x_")])

    assert not rules.can("create", "other", roles("admin", "member"))


def test_everyone_no_one_and_empty_values():
    rules = PropertyRules([section("^x_", create="@", read="!", update="", delete="admin,!")])
    credentials = roles("admin")

    assert [rules.can(op, "x_a", credentials) for op in ("create", "read", "update", "delete")] == [
        True,
        False,
        False,
        False,
    ]


def test_service_token_roles_count():
    rules = PropertyRules([section("^x_", update="service_role")])

    assert rules.can("update", "x_a", roles("member", service=("service_role",)))
    assert not rules.can("update", "x_a", roles("member"))


def test_os_glance_is_governed_by_glance_section_first():
    # A user section for os_glance is ignored; any name containing os_glance is free.
    rules = PropertyRules([section("^os_glance", read="!"), section(".*", read="!")])

    assert rules.can("read", "os_glance_import_task", roles())
    assert rules.can("delete", "my_os_glance_note", roles())
    assert not rules.can("read", "other", roles("admin"))


def test_no_sections_means_the_feature_is_off():
    rules = PropertyRules([])

    assert not rules.enabled
    assert rules.can("delete", "anything", roles())
