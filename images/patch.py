"""Glance's image PATCH: both json-patch media types, Glance's per-attribute rules (§5.4).

Operations are checked and applied one by one to an in-memory document with ``jsonpatch``;
the result is saved once, so one failing operation leaves the image untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

import jsonpatch
import jsonpointer

from images import validation
from images.models import Image, ImageStatus
from images.protections import PropertyAccess
from imageservice.errors import GlanceError

MEDIA_TYPE_V20 = "application/openstack-images-v2.0-json-patch"
MEDIA_TYPE_V21 = "application/openstack-images-v2.1-json-patch"
PATCH_MEDIA_TYPES = (MEDIA_TYPE_V20, MEDIA_TYPE_V21)
OPERATIONS = ("add", "remove", "replace")
FORMAT_FIELDS = ("disk_format", "container_format")


@dataclass(frozen=True)
class Operation:
    op: str
    name: str
    value: object = None


def check_media_type(content_type: str) -> str:
    media_type = content_type.split(";")[0].strip().lower()
    if media_type not in PATCH_MEDIA_TYPES:
        raise GlanceError(
            415,
            detail=f"Image PATCH expects Content-Type one of: {', '.join(PATCH_MEDIA_TYPES)}",
            headers={"Accept-Patch": ", ".join(PATCH_MEDIA_TYPES)},
        )
    return media_type


def parse_operations(body: object, media_type: str) -> list[Operation]:
    if not isinstance(body, list):
        raise GlanceError(400, "Request body must be a JSON array of operation objects.")
    return [_parse_operation(raw, media_type) for raw in body]


def _parse_operation(raw: object, media_type: str) -> Operation:
    if not isinstance(raw, dict):
        raise GlanceError(400, "Operations must be JSON objects.")
    if media_type == MEDIA_TYPE_V20:
        names = [name for name in OPERATIONS if name in raw]
        if len(names) != 1:
            raise GlanceError(
                400,
                'Operation objects must contain exactly one member named "add", '
                '"remove", or "replace".',
            )
        op, path = names[0], raw[names[0]]
    else:
        if "op" not in raw:
            raise GlanceError(400, 'Operation objects must contain a member named "op".')
        op = raw["op"]
        if op not in OPERATIONS:
            raise GlanceError(
                400,
                f"Invalid operation: `{op}`. It must be one of the following: "
                "add, remove, replace.",
            )
        if "path" not in raw:
            raise GlanceError(400, "Unable to find 'path' element in the request.")
        path = raw["path"]
    if op != "remove" and "value" not in raw:
        raise GlanceError(400, f'Operation "{op}" requires a member named "value".')
    return Operation(op, _attribute_name(path), raw.get("value"))


def _attribute_name(path: object) -> str:
    invalid = GlanceError(400, f"Invalid JSON pointer for this resource: '{path}'")
    if not isinstance(path, str) or not path.startswith("/") or "//" in path:
        raise invalid
    if path.endswith("/"):
        raise invalid
    try:
        parts = jsonpointer.JsonPointer(path).parts
    except jsonpointer.JsonPointerException:
        raise invalid from None
    if len(parts) != 1:
        raise invalid
    return parts[0]


def image_document(image: Image, access: PropertyAccess | None = None) -> dict[str, object]:
    """The writable view of an image that operations are applied to.

    Properties ``access`` may not read are left out: to the caller they do not exist.
    """
    properties = image.property_dict()
    document: dict[str, object] = access.readable(properties) if access else dict(properties)
    for name in validation.WRITABLE_BASE_ATTRIBUTES - {"tags"}:
        document[name] = getattr(image, name)
    document["tags"] = image.tag_list()
    return document


def apply_operations(
    image: Image,
    operations: list[Operation],
    media_type: str,
    is_admin: bool,
    access: PropertyAccess | None = None,
) -> dict[str, object]:
    """The patched document; ``access``: the caller's property protections, if any."""
    document = image_document(image, access)
    for operation in operations:
        _check_operation(image, document, operation, media_type, is_admin, access)
        document = jsonpatch.apply_patch(document, [_rfc6902(operation)])
    return document


def _rfc6902(operation: Operation) -> dict[str, object]:
    path = "/" + operation.name.replace("~", "~0").replace("/", "~1")
    if operation.op == "remove":
        return {"op": "remove", "path": path}
    # Glance's "add" and "replace" both set the attribute, existing or not (checked before).
    return {"op": "add", "path": path, "value": operation.value}


def _check_operation(
    image: Image,
    document: dict,
    operation: Operation,
    media_type: str,
    is_admin: bool,
    access: PropertyAccess | None,
) -> None:
    name = operation.name
    if name in validation.READ_ONLY_ATTRIBUTES:
        raise validation.read_only_error(name)
    if validation.is_reserved(name):
        raise validation.reserved_error(name)
    if name in validation.WRITABLE_BASE_ATTRIBUTES:
        _check_base_operation(image, operation, media_type, is_admin)
    else:
        _check_custom_operation(document, operation, media_type)
        if access is not None:
            _check_protection(image, operation, access)
    if operation.op != "remove":
        validation.validate_against_schema({name: operation.value})


def _check_base_operation(
    image: Image, operation: Operation, media_type: str, is_admin: bool
) -> None:
    name = operation.name
    if operation.op == "remove":
        raise GlanceError(403, f"Property {name} may not be removed.")
    if operation.op == "add" and media_type == MEDIA_TYPE_V20:
        raise GlanceError(409, f"Property {name} already present.")
    if name == "owner" and not is_admin:
        raise GlanceError(403, "Owner can't be updated by non admin.")
    if name in FORMAT_FIELDS and image.status not in (ImageStatus.QUEUED, ImageStatus.IMPORTING):
        raise GlanceError(403, f"Attribute {name} can be only replaced for a queued image.")


def _check_custom_operation(document: dict, operation: Operation, media_type: str) -> None:
    name = operation.name
    exists = name in document
    if operation.op == "add":
        if exists and media_type == MEDIA_TYPE_V20:
            raise GlanceError(409, f"Property {name} already present.")
        validation.check_custom_names([name])
    elif not exists:
        raise GlanceError(409, f"Property {name} does not exist.")


def _check_protection(image: Image, operation: Operation, access: PropertyAccess) -> None:
    # Runs after _check_custom_operation, so replace/remove of a property the caller cannot
    # read already got Glance's 409 "does not exist". Whether an add creates or updates is
    # judged on the stored set: Glance judged it on the caller's view and then failed with a
    # 500 saving over the hidden property (internals §5.4).
    if operation.op == "remove":
        access.require("delete", operation.name)
    elif operation.op == "replace" or operation.name in image.property_dict():
        access.require("update", operation.name)
    else:
        access.require("create", operation.name)


def split_document(document: dict) -> tuple[dict[str, object], dict[str, str], set[str]]:
    """Base fields, custom properties and tags of a patched document."""
    base = validation.WRITABLE_BASE_ATTRIBUTES
    fields = {k: v for k, v in document.items() if k in base and k != "tags"}
    properties = {k: v for k, v in document.items() if k not in base}
    return fields, properties, set(document["tags"])
