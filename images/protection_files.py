"""Glance's ``property_protection_file``: read it into sections and write sections back.

INI as Python's ``configparser`` reads it (keys case-insensitive, ``=`` or ``:``, full-line ``#``
and ``;`` comments, indented continuation lines, ``[DEFAULT]`` values inherited by every
section), parsed by hand so every error can name its line. The checks are Glance's
(internals §5.1), made at load time instead of on the first request:

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

from images.protections import (
    EVERYONE,
    GLANCE_PREFIX,
    NO_ONE,
    OPERATIONS,
    POLICIES,
    ROLES,
    split_roles,
)

DEFAULT_SECTION = "DEFAULT"
COMMENT_PREFIXES = ("#", ";")
_OPTION = re.compile(r"(?P<key>.*?)\s*[=:]\s*(?P<value>.*)$")


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


@dataclass
class _RawSection:
    name: str
    line: int
    values: dict[str, tuple[str, int]] = field(default_factory=dict)


def parse_protection_file(
    text: str, rule_format: str, policy_rules: Collection[str] = ()
) -> ProtectionFile:
    """The sections of ``text`` in file order, normalised, or ``ProtectionFileError``.

    ``policy_rules`` are the rule names the policy defines (policies format only).
    """
    if rule_format not in (ROLES, POLICIES):
        raise ProtectionFileError(f"Unknown rule format '{rule_format}': use roles or policies")
    raw = _read_ini(text)
    defaults = next((s for s in raw if s.name == DEFAULT_SECTION), None)
    result = ProtectionFile(rule_format)
    for section in raw:
        if section.name == DEFAULT_SECTION:
            continue
        if section.name.startswith(GLANCE_PREFIX):
            result.warnings.append(
                f"line {section.line}: section [{section.name}] ignored: properties named "
                f"{GLANCE_PREFIX}* are always governed by Glance's own [os_glance.*] section"
            )
            continue
        result.sections.append(
            _checked_section(section, defaults, rule_format, policy_rules, result.warnings)
        )
    return result


def _checked_section(
    section: _RawSection,
    defaults: _RawSection | None,
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
        found = section.values.get(operation) or (defaults and defaults.values.get(operation))
        if not found:
            raise ProtectionFileError(
                f"{where} has no '{operation}': every section needs create, read, update and delete"
            )
        value, line = found
        if rule_format == ROLES:
            rules[operation] = _roles_value(value, f"line {line}: [{section.name}] {operation}")
        else:
            rules[operation] = _policy_value(
                value, f"line {line}: [{section.name}] {operation}", policy_rules
            )
        if not rules[operation]:
            warnings.append(
                f"line {line}: [{section.name}] {operation} is empty, so no one may {operation}"
            )
    return ProtectionSection(section.name, rules, section.line)


def _roles_value(value: str, where: str) -> str:
    roles = split_roles(value)
    if EVERYONE in roles and NO_ONE in roles:
        raise ProtectionFileError(f"{where}: '@' (everyone) and '!' (no one) cannot be combined")
    # Kept in file order, lower-cased: Glance compares lower-case role names.
    ordered = dict.fromkeys(role.strip().lower() for role in value.split(",") if role.strip())
    return ",".join(ordered)


def _policy_value(value: str, where: str, policy_rules: Collection[str]) -> str:
    names = [name.strip() for name in value.split(",") if name.strip()]
    if len(names) > 1:
        raise ProtectionFileError(
            f"{where}: the policies format takes one policy rule name, not {len(names)}"
        )
    name = names[0] if names else ""
    if name and name not in (EVERYONE, NO_ONE) and name not in policy_rules:
        raise ProtectionFileError(f"{where}: unknown policy rule '{name}'")
    return name


def _read_ini(text: str) -> list[_RawSection]:
    sections: list[_RawSection] = []
    current: _RawSection | None = None
    last_key: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped:
            last_key = None
            continue
        if stripped.startswith(COMMENT_PREFIXES):
            continue
        if line[0].isspace() and current is not None and last_key is not None:
            # configparser's continuation line: part of the previous value.
            value, first = current.values[last_key]
            current.values[last_key] = (f"{value}\n{stripped}", first)
            continue
        if stripped.startswith("["):
            current = _section_header(stripped, number, sections)
            sections.append(current)
            last_key = None
            continue
        match = _OPTION.match(stripped)
        if not match or not match["key"]:
            raise ProtectionFileError(
                f"line {number}: expected a [section] header or 'operation = value', "
                f"got {stripped!r}"
            )
        if current is None:
            raise ProtectionFileError(f"line {number}: {stripped!r} comes before any [section]")
        key = match["key"].lower()
        if current.name != DEFAULT_SECTION and key not in OPERATIONS:
            raise ProtectionFileError(
                f"line {number}: [{current.name}] has unknown key '{key}' "
                "(expected create, read, update or delete)"
            )
        if key in current.values:
            raise ProtectionFileError(
                f"line {number}: '{key}' is given twice in section [{current.name}]"
            )
        current.values[key] = (match["value"], number)
        last_key = key
    return sections


def _section_header(stripped: str, number: int, sections: list[_RawSection]) -> _RawSection:
    if not stripped.endswith("]") or len(stripped) < 3:
        raise ProtectionFileError(f"line {number}: malformed section header {stripped!r}")
    name = stripped[1:-1]
    for earlier in sections:
        if earlier.name == name:
            raise ProtectionFileError(
                f"line {number}: section [{name}] already appears on line {earlier.line}"
            )
    return _RawSection(name, number)


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
