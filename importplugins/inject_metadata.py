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

from imageservice.config_syntax import parse_dict
from importplugins.base import ImportContext, ImportPlugin

log = logging.getLogger(__name__)

INJECTING_METHODS = frozenset({"glance-direct", "web-download"})
RESERVED_PREFIX = "os_glance"


def parse_inject_properties(value: str) -> dict[str, str]:
    """``k:v,k2:v2`` or ``"k":"v","k2":"v2"`` as a dict; raise ``ValueError`` if malformed.

    The syntax is oslo.config's dict syntax with quotes, see
    :func:`imageservice.config_syntax.parse_dict`; a key starting with ``os_glance`` is refused
    too (Glance reserves those).
    """
    properties = parse_dict(value)
    for key in properties:
        if key.startswith(RESERVED_PREFIX):
            raise ValueError(f"{key!r} is reserved: keys starting with {RESERVED_PREFIX}")
    return properties


class InjectImageMetadata(ImportPlugin):
    name = "inject_image_metadata"
    reads_data = False
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
