"""Checks on image attributes shared by create and PATCH (glance-api-v2.md §3.3, §5.1, §5.4)."""

from __future__ import annotations

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


def check_tag_quota(image_id: str, count: int) -> None:
    if count > settings.IMAGE_TAG_QUOTA:
        raise GlanceError(
            413,
            f"Image tag limit exceeded for image {image_id}: The limit has been exceeded on the "
            f"number of allowed image tags. Attempted: {count}, "
            f"Maximum: {settings.IMAGE_TAG_QUOTA}:",
        )
