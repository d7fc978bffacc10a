"""inject_image_metadata: operator properties on glance-direct and web-download imports."""

from __future__ import annotations

import pytest

from importplugins.chain import import_settings_snapshot
from importplugins.inject_metadata import InjectImageMetadata, parse_inject_properties
from tests.plugins.conftest import ADMIN_ROLES, MEMBER_ROLES

INJECT = {"inject_metadata_properties": {"region": "eu-1", "support": "tier-2"}}


@pytest.mark.parametrize("method", ["glance-direct", "web-download"])
def test_inject_sets_properties_for_member(make_context, method):
    context = make_context(method=method, roles=MEMBER_ROLES, settings=INJECT)

    InjectImageMetadata().run(context)

    assert context.properties == {"region": "eu-1", "support": "tier-2"}
    assert context.data_changed is False


def test_inject_skips_admin(make_context):
    context = make_context(roles=ADMIN_ROLES, properties={"a": "1"}, settings=INJECT)

    InjectImageMetadata().run(context)

    assert context.properties == {"a": "1"}


def test_inject_never_touches_copy_image(make_context):
    context = make_context(method="copy-image", roles=MEMBER_ROLES, settings=INJECT)

    InjectImageMetadata().run(context)

    assert context.properties == {}


def test_inject_matches_ignored_roles_case_insensitively_but_exactly(make_context):
    settings = {**INJECT, "ignore_user_roles": ["Operator"]}
    operator = make_context(roles=frozenset({"member", "operator"}), settings=settings)
    lookalike = make_context(roles=frozenset({"member", "operators"}), settings=settings)

    InjectImageMetadata().run(operator)
    InjectImageMetadata().run(lookalike)

    assert operator.properties == {}
    assert lookalike.properties == {"region": "eu-1", "support": "tier-2"}


def test_inject_overwrites_user_property_of_same_name(make_context):
    context = make_context(properties={"region": "mine", "os_distro": "debian"}, settings=INJECT)

    InjectImageMetadata().run(context)

    assert context.properties == {"region": "eu-1", "support": "tier-2", "os_distro": "debian"}


@pytest.mark.parametrize(
    "value",
    [
        "region:eu-1,support:tier-2",
        " region : eu-1 , support : tier-2 ",
        '"region":"eu-1","support":"tier-2"',
        "'region':'eu-1', 'support':'tier-2'",
    ],
)
def test_snapshot_parses_plain_and_quoted_inject_forms(settings, value):
    settings.INJECT_METADATA_PROPERTIES = value

    assert import_settings_snapshot()["inject_metadata_properties"] == {
        "region": "eu-1",
        "support": "tier-2",
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", {}),
        ("a:b:c", {"a": "b:c"}),
        ("url:http://x/y", {"url": "http://x/y"}),
        ('note:it\'s fine,list:"a,b"', {"note": "it's fine", "list": "a,b"}),
        ('"a:b":c', {"a:b": "c"}),
    ],
)
def test_parse_inject_properties_splits_at_first_colon_outside_quotes(value, expected):
    assert parse_inject_properties(value) == expected


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("region", "expected key:value, got 'region'"),
        ("a:1,a:2", "duplicate key 'a'"),
        (":1", "empty key in ':1'"),
        ("os_glance_x:1", "'os_glance_x' is reserved: keys starting with os_glance"),
        ('"a:1', "unbalanced \" in '\"a:1'"),
    ],
)
def test_parse_inject_properties_refuses_malformed_values(value, problem):
    with pytest.raises(ValueError) as refused:
        parse_inject_properties(value)

    assert str(refused.value) == problem
