from __future__ import annotations

import json
import logging
import re

import pytest

from imageservice.identity.credentials import Credentials
from imageservice.policy.checks import check_policy
from imageservice.policy.defaults import DEFAULT_RULES
from imageservice.policy.engine import Decision, Policy, PolicyError, get_policy, reset_policy
from tests.policy import ADMIN, OUTSIDER, OWNER, PERSONAS, image_target


@pytest.fixture(autouse=True)
def fresh_policy():
    reset_policy()
    yield
    reset_policy()


def write_yaml(tmp_path, text: str):
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


# --- building ------------------------------------------------------------------------------


def test_policy_without_file_has_the_defaults():
    policy = Policy(policy_file="")

    assert dict(policy.rules) == {name: (check, "default") for name, check in DEFAULT_RULES.items()}


def test_yaml_file_rule_replaces_default(tmp_path):
    path = write_yaml(tmp_path, 'modify_image: "role:admin"\n')

    policy = Policy(policy_file=path)

    assert policy.rules["modify_image"] == ("role:admin", "file")
    assert policy.authorize("modify_image", OWNER, image_target()) is False
    assert policy.authorize("modify_image", ADMIN, image_target()) is True


def test_yaml_file_keeps_other_defaults(tmp_path):
    policy = Policy(policy_file=write_yaml(tmp_path, 'modify_image: "role:admin"\n'))

    assert policy.rules["delete_image"] == (DEFAULT_RULES["delete_image"], "default")
    assert policy.authorize("delete_image", OWNER, image_target()) is True


def test_yaml_file_may_add_rules(tmp_path):
    path = write_yaml(tmp_path, 'project_admin: "role:member and rule:context_is_admin"\n')

    policy = Policy(policy_file=path)

    assert policy.rules["project_admin"][1] == "file"
    assert policy.authorize("project_admin", ADMIN, {}) is True
    assert policy.authorize("project_admin", OWNER, {}) is False


def test_json_file_is_accepted_and_logged_as_deprecated(tmp_path, caplog):
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"modify_image": "role:admin", "copy_image": [["role:member"]]}))

    with caplog.at_level(logging.WARNING, logger="imageservice.policy.engine"):
        policy = Policy(policy_file=path)

    assert policy.rules["modify_image"] == ("role:admin", "file")
    assert policy.authorize("copy_image", OWNER, image_target()) is True
    assert "deprecated" in caplog.text


def test_overriding_context_is_admin_moves_every_admin_rule(tmp_path):
    policy = Policy(policy_file=write_yaml(tmp_path, 'context_is_admin: "role:cloud_admin"\n'))
    cloud_admin = Credentials(user_id="ca", project_id="C", roles=frozenset({"cloud_admin"}))

    assert policy.authorize("copy_image", ADMIN, image_target()) is False
    assert policy.authorize("copy_image", cloud_admin, image_target()) is True


def test_file_rules_may_refer_forward(tmp_path):
    path = write_yaml(tmp_path, 'first: "rule:second"\nsecond: "role:member"\n')

    assert Policy(policy_file=path).authorize("first", OWNER, {}) is True


def test_empty_file_means_defaults(tmp_path):
    policy = Policy(policy_file=write_yaml(tmp_path, "# nothing overridden\n"))

    assert policy.rules["copy_image"] == (DEFAULT_RULES["copy_image"], "default")


# --- build errors --------------------------------------------------------------------------


def test_unknown_rule_reference_fails_build(tmp_path):
    path = write_yaml(tmp_path, 'modify_image: "role:admin or rule:owner_only"\n')

    with pytest.raises(
        PolicyError, match=r"^Rule 'modify_image': references unknown rule 'owner_only'$"
    ):
        Policy(policy_file=path)


def test_syntax_error_in_file_names_rule_and_position(tmp_path):
    path = write_yaml(tmp_path, 'modify_image: "role:admin or and role:member"\n')

    with pytest.raises(
        PolicyError, match=r"^Rule 'modify_image': unexpected token 'and' at position 14$"
    ):
        Policy(policy_file=path)


def test_circular_reference_fails_build(tmp_path):
    path = write_yaml(tmp_path, 'a: "rule:b"\nb: "role:x or rule:a"\n')

    with pytest.raises(PolicyError, match=r"circular reference a -> b -> a"):
        Policy(policy_file=path)


def test_missing_file_fails_build_naming_it(tmp_path):
    path = tmp_path / "absent.yaml"

    with pytest.raises(PolicyError, match=re.escape(f"Policy file '{path}' cannot be read")):
        Policy(policy_file=path)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("modify_image: [unclosed\n", "is not valid YAML"),
        ('{"modify_image": }', "is not valid JSON"),
        ("- role:admin\n", "must map rule names to check strings"),
    ],
)
def test_invalid_file_fails_build_naming_it(tmp_path, text, problem):
    path = write_yaml(tmp_path, text)

    with pytest.raises(PolicyError, match=re.escape(f"Policy file '{path}' {problem}")):
        Policy(policy_file=path)


# --- authorize -----------------------------------------------------------------------------


def test_authorize_unknown_rule_raises_key_error():
    with pytest.raises(KeyError):
        Policy(policy_file="").authorize("modify_imag", ADMIN, image_target())


def test_is_admin_credential_follows_context_is_admin(tmp_path):
    policy = Policy(policy_file=write_yaml(tmp_path, 'flagged: "is_admin:True"\n'))

    assert policy.authorize("flagged", ADMIN, {}) is True
    assert policy.authorize("flagged", OWNER, {}) is False


def test_policy_file_setting_is_read_when_no_path_given(tmp_path, settings):
    settings.POLICY_FILE = str(write_yaml(tmp_path, 'copy_image: "role:member"\n'))

    assert Policy().rules["copy_image"] == ("role:member", "file")


# --- cached policy -------------------------------------------------------------------------


def test_get_policy_is_cached():
    assert get_policy() is get_policy()


def test_reset_policy_forces_rebuild():
    first = get_policy()
    reset_policy()

    assert get_policy() is not first


def test_policy_file_setting_change_rebuilds(tmp_path, settings):
    settings.POLICY_FILE = ""
    assert get_policy().authorize("copy_image", OWNER, image_target()) is False

    settings.POLICY_FILE = str(write_yaml(tmp_path, 'copy_image: "role:member"\n'))

    assert get_policy().authorize("copy_image", OWNER, image_target()) is True


# --- explain -------------------------------------------------------------------------------


def test_explain_admin_names_the_admin_role():
    decision = Policy(policy_file="").explain("modify_image", ADMIN, image_target())

    assert decision == Decision(
        allowed=True,
        rule="modify_image",
        check_string=DEFAULT_RULES["modify_image"],
        source="default",
        deciding_checks=["role:admin"],
    )


def test_explain_owner_names_member_checks():
    decision = Policy(policy_file="").explain("modify_image", OWNER, image_target())

    assert decision.allowed is True
    assert decision.deciding_checks == ["role:member", "project_id:%(project_id)s"]


def test_explain_denial_lists_each_failed_branch():
    decision = Policy(policy_file="").explain("modify_image", OUTSIDER, image_target())

    assert decision.allowed is False
    assert decision.deciding_checks == ["role:admin", "project_id:%(project_id)s"]


def test_explain_reports_file_source_and_negation(tmp_path):
    policy = Policy(policy_file=write_yaml(tmp_path, 'copy_image: "not role:reader"\n'))

    decision = policy.explain("copy_image", OWNER, image_target())

    assert (decision.allowed, decision.source) == (False, "file")
    assert decision.check_string == "not role:reader"
    assert decision.deciding_checks == ["role:reader"]


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("visibility", ["private", "shared", "public"])
def test_explain_agrees_with_authorize(persona, visibility):
    policy = Policy(policy_file="")
    creds = PERSONAS[persona]
    target = image_target(visibility=visibility, member_id=creds.project_id)

    for name in DEFAULT_RULES:
        explained = policy.explain(name, creds, target).allowed
        assert explained is policy.authorize(name, creds, target), name


# --- system check --------------------------------------------------------------------------


def test_check_policy_passes_with_defaults(settings):
    settings.POLICY_FILE = ""

    assert check_policy(None) == []


def test_check_policy_reports_broken_file(tmp_path, settings):
    settings.POLICY_FILE = str(write_yaml(tmp_path, 'get_image: "rule:nope"\n'))

    errors = check_policy(None)

    assert [(e.id, e.msg) for e in errors] == [
        ("imageservice.E010", "Rule 'get_image': references unknown rule 'nope'")
    ]
    assert "POLICY_FILE" in errors[0].hint
