"""schemathesis hooks for ``make fuzz`` (loaded through ``SCHEMATHESIS_HOOKS``).

Glance's PATCH media types are JSON under another name. Generated path parameters and headers
are mixed with names that exist (``FUZZ_*`` from tests/fuzz/run.py: image, project and store
ids, spare tokens), so the calls reach real images, members, stores and tokens, not only 404s.
"""

from __future__ import annotations

import os

import schemathesis
from hypothesis import strategies as st

schemathesis.serializer.alias(
    [
        "application/openstack-images-v2.1-json-patch",
        "application/openstack-images-v2.0-json-patch",
    ],
    "application/json",
)


def _known(variable: str) -> list[str]:
    return [value for value in os.environ.get(variable, "").split(",") if value]


KNOWN_PATH_PARAMETERS = {
    "image_id": _known("FUZZ_IMAGE_IDS"),
    "member_id": _known("FUZZ_PROJECT_IDS"),
    "store_id": _known("FUZZ_STORES"),
}
KNOWN_HEADERS = {
    "X-Subject-Token": _known("FUZZ_SPARE_TOKENS"),
    "X-Image-Meta-Store": _known("FUZZ_STORES"),
}


def _mixed(values: dict | None, known: dict[str, list[str]]):
    """Three times in four a known value where one exists, else the generated one."""
    if not values:
        return st.just(values)
    strategies = {}
    for name, value in values.items():
        choices = known.get(name)
        strategies[name] = st.sampled_from([*choices * 3, value]) if choices else st.just(value)
    return st.fixed_dictionaries(strategies)


@schemathesis.hook
def flatmap_path_parameters(context, path_parameters):
    return _mixed(path_parameters, KNOWN_PATH_PARAMETERS)


@schemathesis.hook
def flatmap_headers(context, headers):
    return _mixed(headers, KNOWN_HEADERS)


# Names routed beside the catch-all ``{path}`` parameters (``/{path}``, ``/identity/{path}``):
# the document excludes them (``not: enum``), but generation does not always honour that, and a
# routed name answers its own route's status, not the catch-all's.
ROUTED_NAMES = frozenset(
    {"versions", "v2", "openapi.json", "api", "identity", "healthcheck", "metrics", "v3"}
)


@schemathesis.hook
def filter_path_parameters(context, path_parameters):
    return not path_parameters or path_parameters.get("path") not in ROUTED_NAMES
