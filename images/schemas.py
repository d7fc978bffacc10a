"""The JSON-schema documents served under ``/v2/schemas/``.

The wire data equals what a live Glance serves (not the older api-ref samples): glanceclient
validates image, member and task bodies against these documents with warlock, builds CLI options
from the image schema and uses ``is_base`` to choose ``add`` or ``replace`` in PATCH documents.
Every function returns a fresh copy that callers may modify.
"""

from __future__ import annotations

import copy
import json
import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger(__name__)

Schema = dict[str, Any]

DEFAULT_IMAGE_SCHEMA_PROPERTIES_FILE = Path(__file__).with_name("schema-image.json")

UUID_PATTERN = (
    "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"
)


def _nullable_string(description: str, **extra: Any) -> Schema:
    return {"type": ["null", "string"], "description": description, **extra}


def _read_only(type_: str | list[str], description: str, **extra: Any) -> Schema:
    return {"type": type_, "readOnly": True, "description": description, **extra}


_LOCATION_VALIDATION_DATA: Schema = {
    "description": (
        "Values to be used to populate the corresponding image properties. If the image status "
        "is not 'queued', values must exactly match those already contained in the image "
        "properties."
    ),
    "type": "object",
    "writeOnly": True,
    "additionalProperties": False,
    "properties": {
        "checksum": {"type": "string", "minLength": 32, "maxLength": 32},
        "os_hash_algo": {"type": "string", "maxLength": 64},
        "os_hash_value": {"type": "string", "maxLength": 128},
    },
    "required": ["os_hash_algo", "os_hash_value"],
}

# container_format and disk_format get their enum from settings in image_schema().
_IMAGE_BASE_PROPERTIES: dict[str, Schema] = {
    "id": {"type": "string", "description": "An identifier for the image", "pattern": UUID_PATTERN},
    "name": _nullable_string("Descriptive name for the image", maxLength=255),
    "status": _read_only(
        "string",
        "Status of the image",
        enum=[
            "queued",
            "saving",
            "active",
            "killed",
            "deleted",
            "uploading",
            "importing",
            "pending_delete",
            "deactivated",
        ],
    ),
    "visibility": {
        "type": "string",
        "description": "Scope of image accessibility",
        "enum": ["community", "public", "private", "shared"],
    },
    "protected": {"type": "boolean", "description": "If true, image will not be deletable."},
    "os_hidden": {
        "type": "boolean",
        "description": "If true, image will not appear in default image list response.",
    },
    "checksum": _read_only(["null", "string"], "md5 hash of image contents.", maxLength=32),
    "os_hash_algo": _read_only(
        ["null", "string"], "Algorithm to calculate the os_hash_value", maxLength=64
    ),
    "os_hash_value": _read_only(
        ["null", "string"],
        "Hexdigest of the image contents using the algorithm specified by the os_hash_algo",
        maxLength=128,
    ),
    "owner": _nullable_string("Owner of the image", maxLength=255),
    "size": _read_only(["null", "integer"], "Size of image file in bytes"),
    "virtual_size": _read_only(["null", "integer"], "Virtual size of image in bytes"),
    "container_format": _nullable_string("Format of the container"),
    "disk_format": _nullable_string("Format of the disk"),
    "created_at": _read_only("string", "Date and time of image registration"),
    "updated_at": _read_only("string", "Date and time of the last image modification"),
    "tags": {
        "type": "array",
        "description": "List of strings related to the image",
        "items": {"type": "string", "maxLength": 255},
    },
    "direct_url": _read_only("string", "URL to access the image file kept in external store"),
    "min_ram": {"type": "integer", "description": "Amount of ram (in MB) required to boot image."},
    "min_disk": {
        "type": "integer",
        "description": "Amount of disk space (in GB) required to boot image.",
    },
    "self": _read_only("string", "An image self url"),
    "file": _read_only("string", "An image file url"),
    "stores": _read_only(
        "string",
        "Store in which image data resides.  Only present when the operator has enabled "
        "multiple stores.  May be a comma-separated list of store identifiers.",
    ),
    "schema": _read_only("string", "An image schema url"),
    "locations": {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                "url": {"type": "string", "maxLength": 255},
                "metadata": {"type": "object"},
                "validation_data": _LOCATION_VALIDATION_DATA,
            },
            "required": ["url", "metadata"],
        },
        "description": "A set of URLs to access the image file kept in external store",
    },
}

IMAGE_BASE_PROPERTIES: frozenset[str] = frozenset(_IMAGE_BASE_PROPERTIES)
READ_ONLY_IMAGE_PROPERTIES: frozenset[str] = frozenset(
    name for name, prop in _IMAGE_BASE_PROPERTIES.items() if prop.get("readOnly")
)

_IMAGE_LINKS = [
    {"rel": "self", "href": "{self}"},
    {"rel": "enclosure", "href": "{file}"},
    {"rel": "describedby", "href": "{schema}"},
]

_MEMBER_PROPERTIES: dict[str, Schema] = {
    "member_id": {
        "type": "string",
        "description": "An identifier for the image member (tenantId)",
    },
    "image_id": {
        "type": "string",
        "description": "An identifier for the image",
        "pattern": UUID_PATTERN,
    },
    "created_at": {"type": "string", "description": "Date and time of image member creation"},
    "updated_at": {
        "type": "string",
        "description": "Date and time of last modification of image member",
    },
    "status": {
        "type": "string",
        "description": "The status of this image member",
        "enum": ["pending", "accepted", "rejected"],
    },
    "schema": {"readOnly": True, "type": "string"},
}

_TASK_PROPERTIES: dict[str, Schema] = {
    "id": {"description": "An identifier for the task", "pattern": UUID_PATTERN, "type": "string"},
    "type": {
        "description": "The type of task represented by this content",
        "enum": ["import", "api_image_import", "location_import"],
        "type": "string",
    },
    "status": {
        "description": "The current status of this task",
        "enum": ["pending", "processing", "success", "failure"],
        "type": "string",
    },
    "input": {
        "description": "The parameters required by task, JSON blob",
        "type": ["null", "object"],
    },
    "result": {"description": "The result of current task, JSON blob", "type": ["null", "object"]},
    "owner": {"description": "An identifier for the owner of this task", "type": "string"},
    "message": {
        "description": (
            "Human-readable informative message only included when appropriate (usually on failure)"
        ),
        "type": "string",
    },
    "image_id": {"description": "Image associated with the task", "type": "string"},
    "request_id": {"description": "Human-readable informative request-id", "type": "string"},
    "user_id": {"description": "User associated with the task", "type": "string"},
    "expires_at": {
        "description": "Datetime when this resource would be subject to removal",
        "type": ["null", "string"],
    },
    "created_at": {"description": "Datetime when this resource was created", "type": "string"},
    "updated_at": {"description": "Datetime when this resource was updated", "type": "string"},
    "self": {"readOnly": True, "type": "string"},
    "schema": {"readOnly": True, "type": "string"},
}

# Glance leaves the bulky fields out of task list items.
_TASK_FIELDS_HIDDEN_IN_LISTS = ("input", "result", "message")


def image_schema() -> Schema:
    """The image schema: base properties, configured formats and deployment custom properties."""
    return json.loads(_image_schema_text(image_schema_key()))


def image_schema_validator() -> jsonschema.Draft4Validator:
    """A compiled validator for the current image schema (shared; do not mutate)."""
    return _image_schema_validator(image_schema_key())


def image_schema_key() -> tuple[object, ...]:
    # Everything the schema depends on, so overrides and edits of the file are picked up.
    path = _custom_schema_path()
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        mtime = None
    return (tuple(settings.CONTAINER_FORMATS), tuple(settings.DISK_FORMATS), str(path), mtime)


@lru_cache(maxsize=8)
def _image_schema_text(key: tuple[object, ...]) -> str:
    return json.dumps(_build_image_schema())


@lru_cache(maxsize=8)
def _image_schema_validator(key: tuple[object, ...]) -> jsonschema.Draft4Validator:
    return jsonschema.Draft4Validator(json.loads(_image_schema_text(key)))


def _build_image_schema() -> Schema:
    custom_properties, required = _load_custom_image_schema()
    properties = copy.deepcopy(_IMAGE_BASE_PROPERTIES)
    properties["container_format"]["enum"] = [None, *settings.CONTAINER_FORMATS]
    properties["disk_format"]["enum"] = [None, *settings.DISK_FORMATS]
    _merge_custom_properties(properties, custom_properties)
    schema: Schema = {
        "name": "image",
        "properties": properties,
        "additionalProperties": {"type": "string"},
    }
    if required:
        schema["required"] = required
    schema["links"] = copy.deepcopy(_IMAGE_LINKS)
    return schema


def images_schema() -> Schema:
    return {
        "name": "images",
        "properties": {
            "images": {"type": "array", "items": image_schema()},
            "first": {"type": "string"},
            "next": {"type": "string"},
            "schema": {"type": "string"},
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }


def member_schema() -> Schema:
    return {"name": "member", "properties": copy.deepcopy(_MEMBER_PROPERTIES)}


def members_schema() -> Schema:
    return _minimal_collection("members", member_schema())


def task_schema() -> Schema:
    return {"name": "task", "properties": copy.deepcopy(_TASK_PROPERTIES)}


def tasks_schema() -> Schema:
    item = task_schema()
    for name in _TASK_FIELDS_HIDDEN_IN_LISTS:
        del item["properties"][name]
    return _minimal_collection("tasks", item)


def _minimal_collection(name: str, item: Schema) -> Schema:
    return {
        "name": name,
        "properties": {name: {"type": "array", "items": item}, "schema": {"type": "string"}},
        "links": [{"rel": "describedby", "href": "{schema}"}],
    }


def _custom_schema_path() -> Path:
    return Path(
        getattr(settings, "IMAGE_SCHEMA_PROPERTIES_FILE", None)
        or DEFAULT_IMAGE_SCHEMA_PROPERTIES_FILE
    )


def _load_custom_image_schema() -> tuple[dict[str, Schema], list[str] | None]:
    """Read the deployment's ``schema-image.json``.

    Like Glance, accept the flat form (``{name: property}``) and the extended form
    (``{"properties": {...}, "required": [...]}``), and carry on without custom properties when
    the file is missing.
    """
    path = _custom_schema_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        logger.warning("Image schema properties file %s not found; no custom properties", path)
        return {}, None
    if "properties" in data:
        return data["properties"], data.get("required") or None
    return data, None


def _merge_custom_properties(properties: dict[str, Schema], custom: dict[str, Schema]) -> None:
    # Glance refuses to start when the file redefines a base property.
    conflicts = sorted(IMAGE_BASE_PROPERTIES.intersection(custom))
    if conflicts:
        raise ImproperlyConfigured(
            f"Custom image properties ({', '.join(conflicts)}) conflict with base properties."
        )
    for name, prop in custom.items():
        properties[name] = {**prop, "is_base": False}
