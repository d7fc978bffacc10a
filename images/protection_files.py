"""Glance's ``property_protection_file``: read it into sections and write sections back.

Read by ``configparser`` as Glance reads it (keys case-insensitive, ``=`` or ``:``, full-line
``#`` and ``;`` comments, indented continuation lines, ``[DEFAULT]`` values inherited by every
section), through :func:`imageservice.config_syntax.read_ini` so every error can name its line.
The checks are Glance's (internals §5.1), made at load time instead of on the first request:

- a section name that is not a regular expression, or a section missing one of the four
  operations, is an error;
- roles format: ``@`` and ``!`` together is an error; an empty value means no one (a warning);
- policies format: exactly one name, ``@``, ``!`` or a rule the policy defines;
- sections starting with ``os_glance`` are dropped with a warning (Glance governs those).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from images.protections import EVERYONE, GLANCE_PREFIX, NO_ONE, OPERATIONS, POLICIES, ROLES
from imageservice.config_syntax import ConfigSyntaxError, IniFile, IniSection, read_ini, split_list

DEFAULT_SECTION = "DEFAULT"


class ProtectionFileError(Exception):
    """A file that cannot be loaded; the message names the line."""


@dataclass(frozen=True)
class ProtectionSection:
    pattern: str
    rules: dict[str, str]
    line: int = 0


@dataclass
class ProtectionFile:
    rule_format: str
    sections: list[ProtectionSection] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def parse_protection_file(
    text: str, rule_format: str, policy_rules: Collection[str] = ()
) -> ProtectionFile:
    """The sections of ``text`` in file order, normalised, or ``ProtectionFileError``.

    ``policy_rules`` are the rule names the policy defines (policies format only).
    """
    if rule_format not in (ROLES, POLICIES):
        raise ProtectionFileError(f"Unknown rule format '{rule_format}': use roles or policies")
    try:
        ini = read_ini(text, key_name="operation")
    except ConfigSyntaxError as error:
        raise ProtectionFileError(str(error)) from None
    _refuse_unknown_keys(ini)
    result = ProtectionFile(rule_format)
    for section in ini.sections.values():
        if section.name.startswith(GLANCE_PREFIX):
            result.warnings.append(
                f"line {section.line}: section [{section.name}] ignored: properties named "
                f"{GLANCE_PREFIX}* are always governed by Glance's own [os_glance.*] section"
            )
            continue
        result.sections.append(
            _checked_section(ini, section, rule_format, policy_rules, result.warnings)
        )
    return result


def _refuse_unknown_keys(ini: IniFile) -> None:
    for section in ini.sections.values():
        for key, value in section.options.items():
            if key not in OPERATIONS:
                raise ProtectionFileError(
                    f"line {value.line}: [{section.name}] has unknown key '{key}' "
                    "(expected create, read, update or delete)"
                )


def _checked_section(
    ini: IniFile,
    section: IniSection,
    rule_format: str,
    policy_rules: Collection[str],
    warnings: list[str],
) -> ProtectionSection:
    where = f"line {section.line}: section [{section.name}]"
    try:
        re.compile(section.name)
    except re.error as error:
        raise ProtectionFileError(f"{where} is not a valid regular expression: {error}") from None
    rules = {}
    for operation in OPERATIONS:
        found = ini.value(section.name, operation)
        if found is None:
            raise ProtectionFileError(
                f"{where} has no '{operation}': every section needs create, read, update and delete"
            )
        value_where = f"line {found.line}: [{section.name}] {operation}"
        if rule_format == ROLES:
            rules[operation] = _roles_value(found.text, value_where)
        else:
            rules[operation] = _policy_value(found.text, value_where, policy_rules)
        if not rules[operation]:
            warnings.append(f"{value_where} is empty, so no one may {operation}")
    return ProtectionSection(section.name, rules, section.line)


def _roles_value(value: str, where: str) -> str:
    # Kept in file order, lower-cased: Glance compares lower-case role names.
    roles = dict.fromkeys(role.lower() for role in split_list(value))
    if EVERYONE in roles and NO_ONE in roles:
        raise ProtectionFileError(f"{where}: '@' (everyone) and '!' (no one) cannot be combined")
    return ",".join(roles)


def _policy_value(value: str, where: str, policy_rules: Collection[str]) -> str:
    names = split_list(value)
    if len(names) > 1:
        raise ProtectionFileError(
            f"{where}: the policies format takes one policy rule name, not {len(names)}"
        )
    name = names[0] if names else ""
    if name and name not in (EVERYONE, NO_ONE) and name not in policy_rules:
        raise ProtectionFileError(f"{where}: unknown policy rule '{name}'")
    return name


def write_protection_file(sections: Iterable[ProtectionSection], rule_format: str) -> str:
    """The file text Glance (and ``parse_protection_file``) reads back as ``sections``."""
    lines = [
        "# Property protections exported by imageservice; "
        f"property_protection_rule_format = {rule_format}",
    ]
    for section in sections:
        if section.pattern == DEFAULT_SECTION or "\n" in section.pattern:
            raise ProtectionFileError(f"Section [{section.pattern}] cannot be written as INI")
        lines += ["", f"[{section.pattern}]"]
        lines += [f"{op} = {section.rules[op]}".rstrip() for op in OPERATIONS]
    return "\n".join(lines) + "\n"
