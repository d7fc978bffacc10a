"""The OpenStack configuration syntaxes: oslo.config lists and dicts, Glance INI files."""

from __future__ import annotations

import pytest

from imageservice import settings as settings_module
from imageservice.config_syntax import ConfigSyntaxError, parse_dict, read_ini, split_list
from imageservice.settings import env_list, env_mapping

# --- lists -----------------------------------------------------------------------------------


def test_env_list_trims_items_and_drops_empty_ones(monkeypatch):
    monkeypatch.setenv("IMAGE_IMPORT_PLUGINS", " a, ,b ,")

    assert env_list("IMAGE_IMPORT_PLUGINS", ["no_op"]) == ["a", "b"]


def test_env_list_unset_is_the_default_and_empty_is_no_items(monkeypatch):
    monkeypatch.delenv("IGNORE_USER_ROLES", raising=False)
    assert env_list("IGNORE_USER_ROLES", ["admin"]) == ["admin"]

    monkeypatch.setenv("IGNORE_USER_ROLES", "")
    assert env_list("IGNORE_USER_ROLES", ["admin"]) == []


def test_env_list_keeps_brackets_and_quotes_as_written(monkeypatch):
    monkeypatch.setenv("ALLOWED_HOSTS", "[::1]")

    assert env_list("ALLOWED_HOSTS", ["*"]) == ["[::1]"]


def test_list_in_glances_bounded_quoted_form():
    value = "['image_decompression', \"inject_image_metadata\" ]"

    assert split_list(value, bounds=True, quotes=True) == [
        "image_decompression",
        "inject_image_metadata",
    ]


def test_list_unquotes_only_a_matching_pair():
    assert split_list("'a', \"b', it's", quotes=True) == ["a", "\"b'", "it's"]


# --- dicts -----------------------------------------------------------------------------------


def test_dict_trims_keys_and_values():
    assert parse_dict(" region : eu-1 , support : tier-2 ") == {
        "region": "eu-1",
        "support": "tier-2",
    }


def test_dict_value_keeps_every_colon_after_the_first():
    assert parse_dict("fast:/srv/fast,mirror:http://x:8080/y") == {
        "fast": "/srv/fast",
        "mirror": "http://x:8080/y",
    }


def test_dict_quoted_value_may_hold_a_comma_and_empty_pairs_are_dropped():
    assert parse_dict('"list":"a,b",,note:it\'s fine,') == {"list": "a,b", "note": "it's fine"}


def test_dict_empty_value_is_no_pairs():
    assert parse_dict("  ") == {}


def test_env_mapping_with_semicolons_keeps_commas_in_values(monkeypatch):
    monkeypatch.setenv("BACKEND_DESCRIPTIONS", "fast:Quick, local;cheap:Archive")

    assert env_mapping("BACKEND_DESCRIPTIONS", pair_separator=";") == {
        "fast": "Quick, local",
        "cheap": "Archive",
    }


@pytest.mark.parametrize("value", ["fast:/srv/fast,cheap", "fast:/srv/fast,cheap:"])
def test_env_mapping_that_cannot_be_read_is_left_for_the_start_up_check(monkeypatch, value):
    monkeypatch.setattr(settings_module, "INVALID_SETTINGS", {})
    monkeypatch.setenv("ENABLED_BACKENDS", value)

    assert env_mapping("ENABLED_BACKENDS") == {}
    assert {"ENABLED_BACKENDS": value} == settings_module.INVALID_SETTINGS


# --- INI files -------------------------------------------------------------------------------

INI = """\
[DEFAULT]
delete = !

[^x_]
; a comment
Create: admin,
  member
read = @
"""


def test_ini_gives_each_section_and_option_its_line():
    ini = read_ini(INI)

    section = ini.sections["^x_"]
    assert (section.name, section.line) == ("^x_", 4)
    assert {key: (value.text, value.line) for key, value in section.options.items()} == {
        "create": ("admin,\nmember", 6),
        "read": ("@", 8),
    }


def test_ini_value_falls_back_to_default_section():
    ini = read_ini(INI)

    assert ini.value("^x_", "delete").line == 2
    assert ini.value("^x_", "update") is None
    assert ini.value("no_such_section", "delete") is None


def test_ini_not_strict_takes_the_later_of_two_values():
    ini = read_ini("[a]\nx = 1\nx = 2\n", strict=False)

    assert ini.value("a", "x").text == "2"


@pytest.mark.parametrize(
    ("read", "text", "message"),
    [
        (parse_dict, "a:1,a:2", "duplicate key 'a'"),
        (parse_dict, "a:1,b", "expected key:value, got 'b'"),
        (parse_dict, " :1", "empty key in ':1'"),
        (parse_dict, "a:'1", "unbalanced ' in \"a:'1\""),
        (read_ini, "[a]\nx = 1\nX = 2\n", "line 3: 'x' is given twice in section [a]"),
        (read_ini, "[a]\n[b]\n[a]\n", "line 3: section [a] already appears on line 1"),
        (read_ini, "x = 1\n", "line 1: 'x = 1' comes before any [section]"),
        (read_ini, "[a]\nx = 1\n[b\n", "line 3: malformed section header '[b'"),
        (
            read_ini,
            "[a]\nwords\n",
            "line 2: expected a [section] header or 'option = value', got 'words'",
        ),
    ],
)
def test_malformed_text_is_refused_saying_what_and_where(read, text, message):
    with pytest.raises(ConfigSyntaxError) as refused:
        read(text)

    assert str(refused.value) == message
