"""schemathesis hooks for ``make fuzz`` (loaded through ``SCHEMATHESIS_HOOKS``).

Glance's PATCH media types are JSON under another name; and generated path parameters are
mixed with the ids of images and projects that exist (``FUZZ_IMAGE_IDS``, ``FUZZ_PROJECT_IDS``
from tests/fuzz/run.py), so the calls reach real images, members and tags, not only 404s.
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

KNOWN = {
    "image_id": [i for i in os.environ.get("FUZZ_IMAGE_IDS", "").split(",") if i],
    "member_id": [i for i in os.environ.get("FUZZ_PROJECT_IDS", "").split(",") if i],
}


@schemathesis.hook
def flatmap_path_parameters(context, path_parameters):
    if not path_parameters:
        return st.just(path_parameters)
    strategies = {}
    for name, value in path_parameters.items():
        known = KNOWN.get(name)
        # Three times in four a real id, else the generated value.
        strategies[name] = (
            st.sampled_from([*known, *known, *known, value]) if known else st.just(value)
        )
    return st.fixed_dictionaries(strategies)
