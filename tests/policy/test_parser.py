from __future__ import annotations

import pytest
import rules

from imageservice.policy.parser import PolicyError, parse_rule


def allows(check: object, creds: dict | None = None, target: dict | None = None, **named) -> bool:
    """Evaluate ``check``; ``named`` holds other rules it may refer to with ``rule:``."""
    ruleset = rules.RuleSet()
    parsed = parse_rule("under_test", check, ruleset.get)
    for name, text in named.items():
        ruleset[name] = parse_rule(name, text, ruleset.get).predicate
    return parsed.predicate.test(creds or {}, target or {})


def error_for(check: object, name: str = "modify_image") -> str:
    with pytest.raises(PolicyError) as raised:
        parse_rule(name, check, rules.RuleSet().get)
    return str(raised.value)


# --- always / never ------------------------------------------------------------------------


@pytest.mark.parametrize("check", ["", "   ", "@", "[]", []])
def test_parse_always_forms_allow_anyone(check):
    assert allows(check, creds={}) is True


def test_parse_bang_denies_everyone():
    assert allows("!", creds={"roles": ["admin"]}) is False


def test_parse_predicate_is_a_rules_predicate():
    parsed = parse_rule("r", "role:admin and not role:reader", rules.RuleSet().get)
    assert isinstance(parsed.predicate, rules.Predicate)


# --- role ----------------------------------------------------------------------------------


def test_role_check_matches_case_insensitively():
    assert allows("role:Admin", creds={"roles": ["admin"]}) is True
    assert allows("role:admin", creds={"roles": ["ADMIN"]}) is True


def test_role_check_denies_without_the_role():
    assert allows("role:admin", creds={"roles": ["member", "reader"]}) is False
    assert allows("role:admin", creds={}) is False


# --- credential against literal ------------------------------------------------------------


def test_credential_literal_compares_as_text():
    assert allows("project_id:abc123", creds={"project_id": "abc123"}) is True
    assert allows("project_id:abc123", creds={"project_id": "abc124"}) is False


def test_credential_literal_matches_boolean_flag():
    assert allows("is_admin:True", creds={"is_admin": True}) is True
    assert allows("is_admin:True", creds={"is_admin": False}) is False


def test_credential_literal_on_list_is_membership():
    assert allows("service_roles:service", creds={"service_roles": ["admin", "service"]}) is True
    assert allows("service_roles:service", creds={"service_roles": ["admin"]}) is False


def test_credential_literal_missing_credential_denies():
    assert allows("service_user_id:glance", creds={"user_id": "glance"}) is False


# --- credential against target -------------------------------------------------------------


def test_credential_target_equal_values_allow():
    assert allows("project_id:%(owner)s", {"project_id": "A"}, {"owner": "A"}) is True
    assert allows("project_id:%(owner)s", {"project_id": "A"}, {"owner": "B"}) is False


def test_credential_target_compares_as_text():
    assert allows("user_id:%(number)s", {"user_id": "42"}, {"number": 42}) is True


def test_credential_target_missing_key_denies():
    assert allows("project_id:%(owner)s", {"project_id": "A"}, {"project_id": "A"}) is False


def test_credential_target_none_credential_denies():
    assert allows("project_id:%(owner)s", {"project_id": None}, {"owner": "None"}) is False


def test_credential_target_none_target_value_denies():
    # member_id is null on images that are not shared.
    assert allows("project_id:%(member_id)s", {"project_id": "None"}, {"member_id": None}) is False


# --- literal against target ----------------------------------------------------------------


@pytest.mark.parametrize("check", ["'public':%(visibility)s", '"public":%(visibility)s'])
def test_quoted_literal_matches_target(check):
    assert allows(check, target={"visibility": "public"}) is True
    assert allows(check, target={"visibility": "private"}) is False


def test_quoted_literal_missing_target_key_denies():
    assert allows("'public':%(visibility)s", target={}) is False


def test_quoted_literal_may_contain_colon_and_space():
    assert allows("'a: b':%(name)s", target={"name": "a: b"}) is True


def test_bare_boolean_literal_matches_python_bool():
    assert allows("True:%(protected)s", target={"protected": True}) is True
    assert allows("True:%(protected)s", target={"protected": False}) is False


def test_number_literal_matches_as_text():
    assert allows("10:%(min_disk)s", target={"min_disk": 10}) is True
    assert allows("10:%(min_disk)s", target={"min_disk": 1}) is False


# --- rule references -----------------------------------------------------------------------


def test_rule_reference_resolves_at_evaluation_time():
    ruleset = rules.RuleSet()
    parsed = parse_rule("outer", "rule:inner", ruleset.get)
    ruleset["inner"] = parse_rule("inner", "role:a", ruleset.get).predicate
    assert parsed.predicate.test({"roles": ["a"]}, {}) is True

    ruleset["inner"] = parse_rule("inner", "!", ruleset.get).predicate
    assert parsed.predicate.test({"roles": ["a"]}, {}) is False


def test_rule_reference_to_missing_rule_denies():
    assert allows("rule:nowhere", creds={"roles": ["admin"]}) is False


def test_parse_reports_referenced_rule_names():
    parsed = parse_rule("r", "rule:a or (rule:b and not rule:c) or role:d", rules.RuleSet().get)
    assert parsed.references == frozenset({"a", "b", "c"})


# --- operators and precedence --------------------------------------------------------------


def test_and_requires_both():
    assert allows("role:a and role:b", creds={"roles": ["a", "b"]}) is True
    assert allows("role:a and role:b", creds={"roles": ["a"]}) is False


def test_or_requires_either():
    assert allows("role:a or role:b", creds={"roles": ["b"]}) is True
    assert allows("role:a or role:b", creds={"roles": ["c"]}) is False


def test_not_negates():
    assert allows("not role:a", creds={"roles": ["b"]}) is True
    assert allows("not role:a", creds={"roles": ["a"]}) is False


def test_keywords_are_case_insensitive():
    assert allows("role:a AND NOT role:b Or role:c", creds={"roles": ["c"]}) is True


def test_and_binds_tighter_than_or():
    # a or (b and c), not (a or b) and c
    assert allows("role:a or role:b and role:c", creds={"roles": ["a"]}) is True


def test_not_binds_tighter_than_and():
    # (not a) and b, not not (a and b)
    assert allows("not role:a and role:b", creds={"roles": []}) is False


def test_parentheses_override_precedence():
    assert allows("(role:a or role:b) and role:c", creds={"roles": ["a"]}) is False
    assert allows("not (role:a and role:b)", creds={"roles": []}) is True


def test_parentheses_hug_checks_with_target_keys():
    check = "((project_id:%(project_id)s)) and (role:member)"
    assert allows(check, {"project_id": "A", "roles": ["member"]}, {"project_id": "A"}) is True


def test_seed_upload_image_rule():
    check = (
        "role:admin or (service_user_id:5e7f2b0c6a9d4e3f8b1c0d2e4f6a8b9c) "
        "or (service_roles:service)"
    )
    service_user = {"service_user_id": "5e7f2b0c6a9d4e3f8b1c0d2e4f6a8b9c", "roles": ["member"]}
    assert allows(check, creds={"roles": ["admin"]}) is True
    assert allows(check, creds=service_user) is True
    assert allows(check, creds={"roles": ["member"], "service_roles": ["service"]}) is True
    assert allows(check, creds={"roles": ["member"], "service_user_id": "someone"}) is False


# --- legacy list form ----------------------------------------------------------------------


def test_legacy_list_is_or_of_ands():
    check = [["role:a", "role:b"], ["role:c"]]
    assert allows(check, creds={"roles": ["a", "b"]}) is True
    assert allows(check, creds={"roles": ["c"]}) is True
    assert allows(check, creds={"roles": ["a"]}) is False


def test_legacy_list_renders_as_check_string():
    parsed = parse_rule("r", [["role:a", "role:b"], ["role:c"]], rules.RuleSet().get)
    assert parsed.check_string == "(role:a and role:b) or role:c"


def test_legacy_list_of_only_empty_lists_denies():
    assert allows([[]], creds={"roles": ["admin"]}) is False


def test_legacy_list_references_rules():
    assert allows([["rule:x"]], creds={"roles": ["a"]}, x="role:a") is True


# --- syntax errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("check", "problem"),
    [
        ("role:admin or and role:x", "unexpected token 'and' at position 14"),
        ("role:admin and", "unexpected end of rule at position 14"),
        ("(role:admin or role:x", "missing ')' for '(' at position 0"),
        ("role:admin)", "unexpected token ')' at position 10"),
        ("role:admin role:x", "unexpected token 'role:x' at position 11"),
        ("()", "unexpected token ')' at position 1"),
        ("not", "unexpected end of rule at position 3"),
        ("role:a or admin", "invalid check 'admin' (expected '<kind>:<value>') at position 10"),
        ("role: or role:a", "incomplete check 'role:' at position 0"),
        ("'public:%(visibility)s", "unterminated quote at position 0"),
        ("project_id:%(owner", "unterminated '%(' at position 11"),
        (
            "role:a or http://policy.example",
            "remote check 'http://policy.example' is not supported at position 10",
        ),
    ],
)
def test_syntax_error_names_rule_and_position(check, problem):
    assert error_for(check) == f"Rule 'modify_image': {problem}"


@pytest.mark.parametrize("check", [None, 5, {"role": "admin"}, [[1]]])
def test_non_text_check_is_refused(check):
    assert error_for(check, name="get_image").startswith("Rule 'get_image': ")


def test_quote_inside_a_value_is_an_ordinary_character():
    assert allows("user_id:O'Brien", creds={"user_id": "O'Brien"}) is True
