"""The OpenStack configuration syntaxes operators already know, read the way Glance reads them.

- oslo.config list values (``ListOpt``): :func:`split_list`;
- oslo.config dict values (``DictOpt``): :func:`parse_dict`;
- Glance's INI files, through ``configparser`` as Glance reads its property protection file:
  :func:`read_ini`.

Not oslo.config itself: its ``types.List``/``types.Dict`` are a few lines each but the package
brings netaddr, oslo.i18n, rfc3986 and requests, and we would still wrap them (they keep the
empty items an environment variable should drop, and know no quoted dict values).
"""

from __future__ import annotations

import configparser
from collections.abc import Iterator
from dataclasses import dataclass

QUOTES = "\"'"
KEY_VALUE_SEPARATOR = ":"


class ConfigSyntaxError(ValueError):
    """A value or file that cannot be read; for a file the message starts with the line."""


def split_list(value: str, *, bounds: bool = False, quotes: bool = False) -> list[str]:
    """The items of an oslo.config list value: ``" a, ,b "`` → ``["a", "b"]``.

    Items are separated by commas and trimmed; unlike oslo.config, empty items are dropped.
    ``bounds`` and ``quotes`` accept what Glance declares for its import options
    (``ListOpt(bounds=True, item_type=String(quotes=True))``): the whole list may be wrapped in
    ``[ ]`` (optional here, required by oslo.config) and one pair of matching quotes around an
    item is removed, so ``['a', 'b']`` → ``["a", "b"]``.
    """
    value = value.strip()
    if bounds and value.startswith("[") and value.endswith("]"):
        value = value[1:-1]
    items = (item.strip() for item in value.split(","))
    return [_unquote(item) if quotes else item for item in items if item]


def parse_dict(value: str, *, pair_separator: str = ",") -> dict[str, str]:
    """An oslo.config dict value: ``k:v, k2:v2`` → ``{"k": "v", "k2": "v2"}``.

    Each pair splits at its first colon, so ``url:http://x`` keeps its colon; keys and values are
    trimmed and empty pairs dropped. Beyond oslo.config, a key or value may be quoted
    (``"k":"v"``, ``list:"a,b"``); a quote counts only where a key or value starts, so ``it's`` is
    plain text. Raises ``ConfigSyntaxError`` for a pair without a colon, an empty key, a duplicate
    key (as oslo.config does) or an unclosed quote.
    """
    boundaries = pair_separator + KEY_VALUE_SEPARATOR
    result: dict[str, str] = {}
    for pair in _split_outside_quotes(value, pair_separator, boundaries):
        if not pair.strip():
            continue
        parts = _split_outside_quotes(pair, KEY_VALUE_SEPARATOR, boundaries, maxsplit=1)
        if len(parts) != 2:
            raise ConfigSyntaxError(f"expected key:value, got {pair.strip()!r}")
        key, item = (_unquote(part.strip()) for part in parts)
        if not key:
            raise ConfigSyntaxError(f"empty key in {pair.strip()!r}")
        if key in result:
            raise ConfigSyntaxError(f"duplicate key {key!r}")
        result[key] = item
    return result


def _split_outside_quotes(
    text: str, separator: str, boundaries: str, maxsplit: int = -1
) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quote = ""
    at_token_start = True
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in QUOTES and at_token_start:
            # Only a quote that opens a key or value counts, so "it's" stays a plain value.
            quote = char
        elif char == separator and maxsplit != len(parts):
            parts.append("".join(current))
            current = []
            at_token_start = True
            continue
        if not quote:
            at_token_start = char in boundaries or (at_token_start and char.isspace())
        current.append(char)
    if quote:
        raise ConfigSyntaxError(f"unbalanced {quote} in {text.strip()!r}")
    parts.append("".join(current))
    return parts


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in QUOTES:
        return text[1:-1]
    return text


# --- INI files ---------------------------------------------------------------------------


@dataclass(frozen=True)
class IniValue:
    text: str
    line: int


@dataclass(frozen=True)
class IniSection:
    """A section and its own options (lower-case names), without those of ``[DEFAULT]``."""

    name: str
    line: int
    options: dict[str, IniValue]


@dataclass(frozen=True)
class IniFile:
    """The sections in file order (``[DEFAULT]`` apart, as ``defaults``)."""

    sections: dict[str, IniSection]
    defaults: dict[str, IniValue]

    def value(self, section: str, option: str) -> IniValue | None:
        """``option`` of ``section``, else of ``[DEFAULT]`` (as configparser inherits it)."""
        found = self.sections.get(section)
        if found is None:
            return None
        return found.options.get(option) or self.defaults.get(option)


def read_ini(text: str, *, strict: bool = True, key_name: str = "option") -> IniFile:
    """``text`` read by ``configparser`` (no interpolation), each section and option with its line.

    ``strict`` refuses a section or option given twice (configparser's own switch). Raises
    ``ConfigSyntaxError`` naming the line; ``key_name`` is what its messages call a key.
    """
    reader = _LineReader(text)
    parser = configparser.ConfigParser(interpolation=None, strict=strict, dict_type=reader.new_dict)
    try:
        parser.read_file(reader)
    except configparser.Error as error:
        raise _refusal(error, reader, key_name) from None
    sections = {
        name: IniSection(name, line, _values(options))
        for name, (line, options) in reader.sections.items()
    }
    return IniFile(sections, _values(parser.defaults()))


def _refusal(error: configparser.Error, reader: _LineReader, key_name: str) -> ConfigSyntaxError:
    if isinstance(error, configparser.DuplicateSectionError):
        first = reader.sections[error.section][0]
        return ConfigSyntaxError(
            f"line {error.lineno}: section [{error.section}] already appears on line {first}"
        )
    if isinstance(error, configparser.DuplicateOptionError):
        return ConfigSyntaxError(
            f"line {error.lineno}: '{error.option}' is given twice in section [{error.section}]"
        )
    before_any_section = isinstance(error, configparser.MissingSectionHeaderError)
    # A ParsingError lists every bad line; the first is the one to fix first.
    number = error.lineno if before_any_section else error.errors[0][0]
    line = reader.text_lines[number - 1].strip()
    if line.startswith("["):
        return ConfigSyntaxError(f"line {number}: malformed section header {line!r}")
    if before_any_section:
        return ConfigSyntaxError(f"line {number}: {line!r} comes before any [section]")
    return ConfigSyntaxError(
        f"line {number}: expected a [section] header or '{key_name} = value', got {line!r}"
    )


def _values(options: _LineNotingDict) -> dict[str, IniValue]:
    return {key: IniValue(text, options.first_lines[key]) for key, text in options.items()}


class _LineReader:
    """The file as configparser reads it, noting the line each section and option starts on.

    configparser keeps no line numbers, but it stores each section and option (in its
    ``dict_type``) while reading that line, so the line being read is where the key was written.
    """

    def __init__(self, text: str) -> None:
        self.text_lines = text.splitlines(keepends=True)
        self.number = 0
        self.sections: dict[str, tuple[int, _LineNotingDict]] = {}

    def __iter__(self) -> Iterator[str]:
        for number, line in enumerate(self.text_lines, start=1):
            self.number = number
            yield line

    def new_dict(self) -> _LineNotingDict:
        return _LineNotingDict(self)


class _LineNotingDict(dict):
    def __init__(self, reader: _LineReader) -> None:
        super().__init__()
        self._reader = reader
        self.first_lines: dict[str, int] = {}

    def __setitem__(self, key, value) -> None:
        self.first_lines.setdefault(key, self._reader.number)
        if isinstance(value, _LineNotingDict):
            # configparser files a new section's options under its name as it reads the header.
            self._reader.sections[key] = (self._reader.number, value)
        super().__setitem__(key, value)
