"""Checks on image attributes shared by create and PATCH (glance-api-v2.md §3.3, §5.1, §5.4)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from django.conf import settings

from images.schemas import image_schema_validator
from imageservice.errors import GlanceError

# Base fields a caller may never set (403 "read-only").
READ_ONLY_ATTRIBUTES = frozenset(
    {
        "id",
        "status",
        "checksum",
        "os_hash_algo",
        "os_hash_value",
        "size",
        "virtual_size",
        "created_at",
        "updated_at",
        "direct_url",
        "self",
        "file",
        "schema",
        "stores",
    }
)
RESERVED_ATTRIBUTES = frozenset({"location", "locations", "deleted", "deleted_at"})
WRITABLE_BASE_ATTRIBUTES = frozenset(
    {
        "name",
        "visibility",
        "protected",
        "os_hidden",
        "min_disk",
        "min_ram",
        "tags",
        "container_format",
        "disk_format",
        "owner",
    }
)
BASE_ATTRIBUTES = READ_ONLY_ATTRIBUTES | RESERVED_ATTRIBUTES | WRITABLE_BASE_ATTRIBUTES
MAX_INT = 2**31 - 1


def is_reserved(name: str) -> bool:
    return name in RESERVED_ATTRIBUTES or name.startswith("os_glance")


def read_only_error(name: str) -> GlanceError:
    return GlanceError(403, f"Attribute '{name}' is read-only.")


def reserved_error(name: str) -> GlanceError:
    return GlanceError(403, f"Attribute '{name}' is reserved.")


def validate_against_schema(document: Mapping[str, object]) -> None:
    validator = image_schema_validator()
    error = next(iter(validator.iter_errors(document)), None)
    if error is not None:
        raise GlanceError(400, f"Provided object does not match schema 'image': {error.message}")
    for name in ("min_disk", "min_ram"):
        value = document.get(name)
        if isinstance(value, int) and not 0 <= value <= MAX_INT:
            raise GlanceError(
                400, f"Provided object does not match schema 'image': {value} is out of range"
            )


def check_custom_names(names: Iterable[str]) -> None:
    for name in names:
        if name in BASE_ATTRIBUTES:
            continue
        if len(name) > 255:
            raise GlanceError(400, "Custom property should not be greater than 255 characters.")
        if is_reserved(name):
            raise reserved_error(name)


def check_property_quota(image_id: str, count: int) -> None:
    if count > settings.IMAGE_PROPERTY_QUOTA:
        raise GlanceError(
            413,
            "The limit has been exceeded on the number of allowed image properties. "
            f"Attempted: {count}, Maximum: {settings.IMAGE_PROPERTY_QUOTA}",
        )


def check_tag_quota(count: int) -> None:
    """The tag count of a create or PATCH, refused in Glance's words for those calls."""
    if count > settings.IMAGE_TAG_QUOTA:
        raise GlanceError(413, tag_limit_message(count))


def check_added_tag_quota(image_id: str, count: int) -> None:
    """``PUT /tags/{tag}``: Glance's tags controller wraps the same message (colon included)."""
    if count > settings.IMAGE_TAG_QUOTA:
        raise GlanceError(
            413, f"Image tag limit exceeded for image {image_id}: {tag_limit_message(count)}:"
        )


def tag_limit_message(count: int) -> str:
    return (
        "The limit has been exceeded on the number of allowed image tags. "
        f"Attempted: {count}, Maximum: {settings.IMAGE_TAG_QUOTA}"
    )


# Characters that take 4 bytes in UTF-8 (outside the Basic Multilingual Plane).
FOUR_BYTE_CHARACTER = re.compile("[\U00010000-\U0010ffff]")


def check_no_4byte_characters(
    fields: Mapping[str, object],
    properties: Mapping[str, str] | None = None,
    tags: Iterable[str] = (),
) -> None:
    """Refuse text with 4-byte UTF-8 characters (emoji, say) as Glance does, in its words.

    Glance's database layer refuses them everywhere (MySQL's ``utf8`` holds 3 bytes per
    character); an image made here must stay one Glance and its tools could hold.
    """
    for name, value in [*fields.items(), *(properties or {}).items()]:
        if _has_4byte(name):
            raise GlanceError(400, "Property names can't contain 4 byte unicode.")
        if _has_4byte(value):
            raise GlanceError(400, f"{name.title()} can't contain 4 byte unicode characters.")
    if any(_has_4byte(tag) for tag in tags):
        raise GlanceError(400, "Param values can't contain 4 byte unicode.")


def _has_4byte(value: object) -> bool:
    return isinstance(value, str) and FOUR_BYTE_CHARACTER.search(value) is not None
