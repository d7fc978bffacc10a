"""Loading and exporting Glance's property_protection_file (internals §5.1, §5.2)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from images.models import PropertyProtection

pytestmark = pytest.mark.django_db

ROLES_FILE = """\
# Glance's sample, paraphrased.
[^x_.*]
create = admin,Member, _member_
read = admin,member,_member_
update = admin,member,_member_
delete = admin,member,_member_

[.*]
create = admin
read = @
update = admin
delete = !
"""

POLICIES_FILE = """\
[^x_]
create = context_is_admin
read = @
update = context_is_admin
delete = !
"""


def write(tmp_path, text, name="protections.conf"):
    path = tmp_path / name
    path.write_text(text)
    return path


def load(path, *args, **options):
    out, err = StringIO(), StringIO()
    call_command("load_property_protections", str(path), *args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def rows() -> list[tuple[int, str, str, str, str, str, str]]:
    return list(
        PropertyProtection.objects.values_list(
            "position",
            "pattern",
            "rule_format",
            "create_rule",
            "read_rule",
            "update_rule",
            "delete_rule",
        )
    )


def refusal(path, *args, **options) -> str:
    with pytest.raises(CommandError) as error:
        load(path, *args, **options)
    return str(error.value)


# --- loading -------------------------------------------------------------------------------


def test_load_roles_file_stores_sections_in_order_with_lowercase_roles(tmp_path):
    out, err = load(write(tmp_path, ROLES_FILE))

    assert rows() == [
        (
            1,
            "^x_.*",
            "roles",
            "admin,member,_member_",
            "admin,member,_member_",
            "admin,member,_member_",
            "admin,member,_member_",
        ),
        (2, ".*", "roles", "admin", "@", "admin", "!"),
    ]
    assert out == (
        f"Loaded 2 property protection section(s) in the roles format from "
        f"{tmp_path / 'protections.conf'}.\n"
    )
    assert err == ""


def test_load_policies_file_stores_rule_names(tmp_path):
    load(write(tmp_path, POLICIES_FILE), format="policies")

    assert rows() == [(1, "^x_", "policies", "context_is_admin", "@", "context_is_admin", "!")]


def test_load_replaces_the_previous_rules(tmp_path):
    load(write(tmp_path, ROLES_FILE))

    load(write(tmp_path, POLICIES_FILE, "other.conf"), format="policies")

    assert [row[1] for row in rows()] == ["^x_"]


def test_load_takes_default_section_values_and_configparser_syntax(tmp_path):
    text = (
        "[DEFAULT]\n"
        "delete = !\n"
        "; a comment\n"
        "[^x_]\n"
        "Create: admin,\n"
        "  member\n"
        "read = @\n"
        "update = admin\n"
    )

    load(write(tmp_path, text))

    assert rows() == [(1, "^x_", "roles", "admin,member", "@", "admin", "!")]


def test_load_ignores_os_glance_sections_with_a_warning(tmp_path):
    text = "[os_glance_.*]\ncreate = !\nread = !\nupdate = !\ndelete = !\n\n" + POLICIES_FILE
    path = write(tmp_path, text)

    _, err = load(path, format="policies")

    assert [row[1] for row in rows()] == ["^x_"]
    assert err == (
        f"{path}: line 1: section [os_glance_.*] ignored: properties named os_glance* are "
        "always governed by Glance's own [os_glance.*] section\n"
    )


def test_load_warns_that_an_empty_value_means_no_one(tmp_path):
    path = write(tmp_path, "[^x_]\ncreate =\nread = @\nupdate = @\ndelete = @\n")

    _, err = load(path)

    assert rows() == [(1, "^x_", "roles", "", "@", "@", "@")]
    assert err == f"{path}: line 2: [^x_] create is empty, so no one may create\n"


def test_dry_run_changes_nothing(tmp_path):
    path = write(tmp_path, ROLES_FILE)

    out, _ = load(path, dry_run=True)

    assert rows() == []
    assert out.startswith("Would load 2 property protection section(s)")


def test_clear_turns_protections_off(tmp_path):
    load(write(tmp_path, ROLES_FILE))
    out = StringIO()

    call_command("load_property_protections", clear=True, stdout=out)

    assert rows() == []
    assert out.getvalue() == "2 property protection section(s) were removed; protections are off.\n"


# --- refusals, each naming its line; nothing is changed -------------------------------------

BAD_FILES = [
    pytest.param(
        "roles",
        "[^x_(]\ncreate = @\nread = @\nupdate = @\ndelete = @\n",
        "line 1: section [^x_(] is not a valid regular expression: "
        "missing ), unterminated subpattern at position 3",
        id="invalid-regex",
    ),
    pytest.param(
        "roles",
        "[^a_]\ncreate = @\nread = @\nupdate = @\ndelete = @\n\n[^x_]\ncreate = @\nread = @\n"
        "delete = @\n",
        "line 7: section [^x_] has no 'update': every section needs create, read, update and "
        "delete",
        id="missing-operation",
    ),
    pytest.param(
        "roles",
        "[^x_]\ncreate = @\nread = admin,@,!\nupdate = @\ndelete = @\n",
        "line 3: [^x_] read: '@' (everyone) and '!' (no one) cannot be combined",
        id="everyone-and-no-one",
    ),
    pytest.param(
        "policies",
        "[^x_]\ncreate = @\nread = @\nupdate = context_is_admin\ndelete = no_such_rule\n",
        "line 5: [^x_] delete: unknown policy rule 'no_such_rule'",
        id="unknown-rule",
    ),
    pytest.param(
        "policies",
        "[^x_]\ncreate = context_is_admin, default\nread = @\nupdate = @\ndelete = @\n",
        "line 2: [^x_] create: the policies format takes one policy rule name, not 2",
        id="two-rule-names",
    ),
    pytest.param(
        "roles",
        "[^x_]\ncreate = @\nread = @\nupdate = @\ndelte = @\n",
        "line 5: [^x_] has unknown key 'delte' (expected create, read, update or delete)",
        id="unknown-key",
    ),
    pytest.param(
        "roles",
        "[^x_]\ncreate = @\ncreate = admin\n",
        "line 3: 'create' is given twice in section [^x_]",
        id="duplicate-key",
    ),
    pytest.param(
        "roles",
        "[^x_]\ncreate = @\nread = @\nupdate = @\ndelete = @\n[^x_]\n",
        "line 6: section [^x_] already appears on line 1",
        id="duplicate-section",
    ),
    pytest.param(
        "roles",
        "# rules\ncreate = @\n",
        "line 2: 'create = @' comes before any [section]",
        id="no-section",
    ),
    pytest.param(
        "roles",
        "[^x_]\njust some words\n",
        "line 2: expected a [section] header or 'operation = value', got 'just some words'",
        id="not-ini",
    ),
    pytest.param(
        "roles",
        "[^x_\ncreate = @\n",
        "line 1: malformed section header '[^x_'",
        id="bad-header",
    ),
]


@pytest.mark.parametrize(("rule_format", "text", "message"), BAD_FILES)
def test_load_refuses_an_invalid_file_naming_the_line(tmp_path, rule_format, text, message):
    load(write(tmp_path, ROLES_FILE))
    before = rows()
    path = write(tmp_path, text, "bad.conf")

    assert refusal(path, format=rule_format) == f"{path}: {message}"
    assert rows() == before


def test_load_refuses_a_file_without_sections(tmp_path):
    path = write(tmp_path, "# nothing\n")

    assert refusal(path) == (
        f"{path}: no sections to load; use --clear to turn property protections off."
    )


def test_load_refuses_a_missing_file(tmp_path):
    message = refusal(tmp_path / "absent.conf")

    assert message.startswith(f"Cannot read {tmp_path / 'absent.conf'}:")


def test_load_needs_a_file_or_clear():
    with pytest.raises(CommandError) as error:
        call_command("load_property_protections")

    assert str(error.value) == "Give either a file to load or --clear."


# --- exporting -----------------------------------------------------------------------------


def export(*args, **options) -> str:
    out = StringIO()
    call_command("export_property_protections", *args, stdout=out, **options)
    return out.getvalue()


def test_export_writes_glance_ini(tmp_path):
    load(write(tmp_path, ROLES_FILE))

    assert export() == (
        "# Property protections exported by imageservice; "
        "property_protection_rule_format = roles\n"
        "\n"
        "[^x_.*]\n"
        "create = admin,member,_member_\n"
        "read = admin,member,_member_\n"
        "update = admin,member,_member_\n"
        "delete = admin,member,_member_\n"
        "\n"
        "[.*]\n"
        "create = admin\n"
        "read = @\n"
        "update = admin\n"
        "delete = !\n"
    )


@pytest.mark.parametrize(
    ("text", "rule_format"), [(ROLES_FILE, "roles"), (POLICIES_FILE, "policies")]
)
def test_export_round_trips(tmp_path, text, rule_format):
    load(write(tmp_path, text), format=rule_format)
    original = rows()
    exported = tmp_path / "exported.conf"

    out = export(output=str(exported))
    PropertyProtection.objects.all().delete()
    load(exported, format=rule_format)

    assert rows() == original
    assert out == f"Exported {len(original)} property protection section(s) to {exported}.\n"


def test_export_round_trips_an_empty_value(tmp_path):
    load(write(tmp_path, "[^x_]\ncreate =\nread = @\nupdate = @\ndelete = @\n"))
    exported = write(tmp_path, export(), "exported.conf")

    PropertyProtection.objects.all().delete()
    load(exported)

    assert rows() == [(1, "^x_", "roles", "", "@", "@", "@")]


def test_export_without_rules_is_refused():
    with pytest.raises(CommandError) as error:
        export()

    assert str(error.value) == "No property protection rules are loaded: protections are off."


def test_export_refuses_mixed_formats():
    common = {"create_rule": "@", "read_rule": "@", "update_rule": "@", "delete_rule": "@"}
    PropertyProtection.objects.create(position=1, pattern="^a", rule_format="roles", **common)
    PropertyProtection.objects.create(position=2, pattern="^b", rule_format="policies", **common)

    with pytest.raises(CommandError) as error:
        export()

    assert str(error.value) == (
        "The rules mix the policies and roles formats; a property_protection_file has one."
    )
