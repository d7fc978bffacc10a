"""``inject_image_metadata``: set operator-chosen properties on imported images (internals §3.2).

Differences from Glance, on purpose:

- ``INJECT_METADATA_PROPERTIES`` accepts both ``k:v,k2:v2`` and the admin guide's quoted form
  ``"k":"v","k2":"v2"``; Glance's config parser turns the latter into keys with stray quotes.
- A malformed value or a reserved ``os_glance`` key is refused at start-up (system check
  ``imageservice.E021``) instead of failing every import later.
- Roles match ``IGNORE_USER_ROLES`` case-insensitively, so ``Admin`` in the setting still means
  the ``admin`` role (Glance compares case-sensitively after lower-casing only the token's roles).
"""

from __future__ import annotations

import logging

from importplugins.base import ImportContext, ImportPlugin

log = logging.getLogger(__name__)

INJECTING_METHODS = frozenset({"glance-direct", "web-download"})
RESERVED_PREFIX = "os_glance"
QUOTES = "\"'"
BOUNDARIES = ",:"


def parse_inject_properties(value: str) -> dict[str, str]:
    """Parse ``k:v,k2:v2`` or ``"k":"v","k2":"v2"`` into a dict; raise ``ValueError`` if malformed.

    Pairs are separated by commas and split at the first colon, both outside quotes (a quote
    opens only at the start of a key or value); whitespace around keys and values is dropped and
    one level of matching quotes removed. An empty value
    means no properties. A pair without a colon, an empty key, a duplicate key or a reserved
    ``os_glance`` key is an error.
    """
    properties: dict[str, str] = {}
    if not value.strip():
        return properties
    for pair in _split_outside_quotes(value, ","):
        parts = _split_outside_quotes(pair, ":", maxsplit=1)
        if len(parts) != 2:
            raise ValueError(f"expected key:value, got {pair.strip()!r}")
        key, item = (_unquote(part) for part in parts)
        if not key:
            raise ValueError(f"empty key in {pair.strip()!r}")
        if key in properties:
            raise ValueError(f"duplicate key {key!r}")
        if key.startswith(RESERVED_PREFIX):
            raise ValueError(f"{key!r} is reserved: keys starting with {RESERVED_PREFIX}")
        properties[key] = item
    return properties


def _split_outside_quotes(text: str, separator: str, maxsplit: int = -1) -> list[str]:
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
            at_token_start = char in BOUNDARIES or (at_token_start and char.isspace())
        current.append(char)
    if quote:
        raise ValueError(f"unbalanced {quote} in {text.strip()!r}")
    parts.append("".join(current))
    return parts


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in QUOTES:
        return text[1:-1]
    return text


class InjectImageMetadata(ImportPlugin):
    name = "inject_image_metadata"
    description = (
        "Sets INJECT_METADATA_PROPERTIES on imported images unless the importing user holds one "
        "of IGNORE_USER_ROLES."
    )

    def run(self, context: ImportContext) -> None:
        if context.method not in INJECTING_METHODS:
            return
        ignored = {str(role).lower() for role in context.settings["ignore_user_roles"]}
        if any(role.lower() in ignored for role in context.roles):
            log.debug(
                "no metadata injected into %s: the user holds an ignored role", context.image_id
            )
            return
        inject = context.settings["inject_metadata_properties"]
        # Like Glance, injected values overwrite properties the user set under the same key.
        context.properties.update({str(key): str(value) for key, value in inject.items()})
