"""The schemas of the OpenAPI document (``components.schemas``).

The Glance documents of ``/v2/schemas/*`` are embedded as they are served; the request bodies
are derived from the same definitions the views validate with (the image schema, its read-only
and reserved attributes, the patch media types, the member statuses), so the document cannot
drift from the checks.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from images import schemas, validation
from images.models import MemberStatus
from images.patch import OPERATIONS

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def image_create_schema() -> Schema:
    """What ``POST /v2/images`` accepts: the image schema without read-only and reserved
    attributes, with the integer bounds the service checks beside the schema."""
    image = schemas.image_schema()
    properties = {
        name: prop
        for name, prop in image["properties"].items()
        if name == "id"
        or (name not in validation.READ_ONLY_ATTRIBUTES and not validation.is_reserved(name))
    }
    for name in ("min_disk", "min_ram"):
        properties[name] = {**properties[name], "minimum": 0, "maximum": validation.MAX_INT}
    return {
        "type": "object",
        "description": "An image record. Any attribute not named here is a custom property "
        "(a string). Read-only attributes answer 403; so do reserved ones (`locations`, "
        "`os_glance_*`).",
        "properties": properties,
        "additionalProperties": image["additionalProperties"],
    }


def _patch_v21() -> Schema:
    path = {"type": "string", "description": "`/<attribute>`", "pattern": "^/[^/]+$"}
    return {
        "type": "array",
        "description": "RFC 6902 operations on the image's attributes; `add` and `replace` "
        "both set an attribute.",
        "items": {
            "type": "object",
            "required": ["op", "path"],
            "properties": {"op": {"enum": list(OPERATIONS)}, "path": path, "value": {}},
        },
    }


def _patch_v20() -> Schema:
    path = {"type": "string", "pattern": "^/[^/]+$"}
    return {
        "type": "array",
        "description": "The v2.0 form: each operation has exactly one of `add`, `remove`, "
        "`replace`, holding the path.",
        "items": {
            "type": "object",
            "minProperties": 1,
            "properties": {**{op: path for op in OPERATIONS}, "value": {}},
        },
    }


def _import_request() -> Schema:
    return {
        "type": "object",
        "required": ["method"],
        "properties": {
            "method": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string", "enum": list(settings.ENABLED_IMPORT_METHODS)},
                    "uri": {"type": "string", "description": "web-download: what to fetch"},
                    "glance_image_id": {"type": "string"},
                    "glance_region": {"type": "string"},
                    "glance_service_interface": {"type": "string"},
                },
            },
            "stores": {"type": "array", "items": {"type": "string"}},
            "all_stores": {"type": "boolean"},
            "all_stores_must_succeed": {"type": "boolean"},
        },
    }


def _links() -> Schema:
    return {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["rel", "href"],
            "properties": {"rel": {"type": "string"}, "href": {"type": "string"}},
        },
    }


def _keystone_version() -> Schema:
    return {
        "type": "object",
        "required": ["id", "status", "links"],
        "properties": {
            "id": {"type": "string"},
            "status": {"type": "string"},
            "updated": {"type": "string"},
            "links": _links(),
            "media-types": {"type": "array", "items": {"type": "object"}},
        },
    }


def _named(*, with_domain: bool) -> Schema:
    """A user or project named by id, or by name within a domain (Keystone's references)."""
    properties: Schema = {"id": {"type": "string"}, "name": {"type": "string"}}
    if with_domain:
        properties["domain"] = _named(with_domain=False)
    return {"type": "object", "properties": properties}


def _auth_request() -> Schema:
    user = _named(with_domain=True)
    user["properties"]["password"] = {"type": "string"}
    return {
        "type": "object",
        "description": "Keystone's password or token authentication request.",
        "required": ["auth"],
        "properties": {
            "auth": {
                "type": "object",
                "required": ["identity"],
                "properties": {
                    "identity": {
                        "type": "object",
                        "required": ["methods"],
                        "properties": {
                            "methods": {
                                "type": "array",
                                "items": {"enum": ["password", "token"]},
                                "minItems": 1,
                            },
                            "password": {
                                "type": "object",
                                "required": ["user"],
                                "properties": {"user": user},
                            },
                            "token": {
                                "type": "object",
                                "required": ["id"],
                                "properties": {"id": {"type": "string"}},
                            },
                        },
                    },
                    "scope": {
                        "type": ["object", "string"],
                        "description": 'A project, or "unscoped"',
                        "properties": {"project": _named(with_domain=True)},
                    },
                },
            }
        },
    }


def _progress() -> Schema:
    return {
        "type": "object",
        "properties": {
            "bytes_done": {"type": ["null", "integer"]},
            "bytes_total": {"type": ["null", "integer"]},
            "percent": {"type": ["null", "integer", "number"]},
        },
    }


def _image_task_row() -> Schema:
    nullable = {"type": ["null", "string"]}
    return {
        "type": "object",
        "description": "A task row as Glance shows it here: database timestamps, `deleted`.",
        "required": ["id", "type", "status", "owner", "image_id"],
        "properties": {
            "id": {"type": "string"},
            "type": {"type": "string"},
            "status": {"type": "string"},
            "owner": {"type": "string"},
            "image_id": nullable,
            "request_id": nullable,
            "user_id": nullable,
            "input": {"type": ["null", "object"]},
            "result": {"type": ["null", "object"]},
            "message": {"type": "string"},
            "expires_at": nullable,
            "created_at": nullable,
            "updated_at": nullable,
            "deleted": {"type": "boolean"},
            "deleted_at": nullable,
            "progress": _progress(),
        },
    }


def _stores(detail: bool) -> Schema:
    entry: Schema = {
        "type": "object",
        "required": ["id"],
        "properties": {
            "id": {"type": "string"},
            "description": {"type": "string"},
            "default": {"type": "string", "enum": ["true"]},
        },
    }
    if detail:
        entry["properties"].update(
            type={"type": "string"}, weight={"type": "integer"}, properties={"type": "object"}
        )
    return {
        "type": "object",
        "required": ["stores"],
        "properties": {"stores": {"type": "array", "items": entry}},
    }


def _usage() -> Schema:
    entry = {
        "type": "object",
        "required": ["limit", "usage"],
        "properties": {
            "limit": {"type": "integer", "description": "-1: unlimited"},
            "usage": {"type": "integer"},
        },
    }
    names = ("image_size_total", "image_stage_total", "image_count_total", "image_count_uploading")
    return {
        "type": "object",
        "required": ["usage"],
        "properties": {
            "usage": {
                "type": "object",
                "description": "The caller's project; sizes in MiB.",
                "required": list(names),
                "properties": {name: entry for name in names},
            }
        },
    }


def component_schemas() -> dict[str, Schema]:
    """Every named schema the operations refer to, built for the current settings."""
    return {
        # The Glance documents, as /v2/schemas/* serves them.
        "image": schemas.image_schema(),
        "images": schemas.images_schema(),
        "member": schemas.member_schema(),
        "members": schemas.members_schema(),
        "task": schemas.task_schema(),
        "tasks": schemas.tasks_schema(),
        "SchemaDocument": {
            "type": "object",
            "description": "One of the Glance JSON-schema documents above.",
            "required": ["name", "properties"],
            "properties": {"name": {"type": "string"}, "properties": {"type": "object"}},
        },
        "ImageCreate": image_create_schema(),
        "ImagePatchV21": _patch_v21(),
        "ImagePatchV20": _patch_v20(),
        "MemberCreate": {
            "type": "object",
            "required": ["member"],
            "properties": {"member": {"type": "string", "minLength": 1, "maxLength": 255}},
        },
        "MemberStatusUpdate": {
            "type": "object",
            "required": ["status"],
            "properties": {"status": {"type": "string", "enum": list(MemberStatus.values)}},
        },
        "ImportRequest": _import_request(),
        "ImportInfo": {
            "type": "object",
            "required": ["import-methods"],
            "properties": {
                "import-methods": {
                    "type": "object",
                    "properties": {
                        "description": {"type": "string"},
                        "type": {"type": "string"},
                        "value": {"type": "array", "items": {"type": "string"}},
                    },
                }
            },
        },
        "Stores": _stores(detail=False),
        "Usage": _usage(),
        "StoresDetail": _stores(detail=True),
        "TaskCreate": {
            "type": "object",
            "required": ["type", "input"],
            "properties": {
                "type": {"type": "string", "enum": ["import"]},
                "input": {
                    "type": "object",
                    "required": ["import_from"],
                    "properties": {
                        "import_from": {"type": "string"},
                        "import_from_format": {"type": "string"},
                        "image_properties": {"type": "object"},
                    },
                },
            },
        },
        "TaskWithProgress": {
            "allOf": [ref("task"), {"properties": {"progress": _progress()}}],
        },
        "ImageTasks": {
            "type": "object",
            "required": ["tasks"],
            "properties": {"tasks": {"type": "array", "items": _image_task_row()}},
        },
        "Versions": {
            "type": "object",
            "required": ["versions"],
            "properties": {
                "versions": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["id", "status", "links"],
                        "properties": {
                            "id": {"type": "string"},
                            "status": {"enum": ["CURRENT", "SUPPORTED"]},
                            "links": _links(),
                        },
                    },
                }
            },
        },
        "Error": {
            "type": "object",
            "description": "Glance's JSON error (WebOb's), chosen by `Accept: application/json`.",
            "required": ["message", "code", "title"],
            "properties": {
                "message": {"type": "string"},
                "code": {"type": "string", "description": "`404 Not Found`"},
                "title": {"type": "string"},
            },
        },
        "IdentityVersions": {
            "type": "object",
            "required": ["versions"],
            "properties": {
                "versions": {
                    "type": "object",
                    "properties": {"values": {"type": "array", "items": _keystone_version()}},
                }
            },
        },
        "IdentityVersion": {
            "type": "object",
            "required": ["version"],
            "properties": {"version": _keystone_version()},
        },
        "AuthRequest": _auth_request(),
        "Token": {
            "type": "object",
            "required": ["token"],
            "properties": {
                "token": {
                    "type": "object",
                    "required": ["methods", "user", "expires_at", "issued_at"],
                    "properties": {
                        "methods": {"type": "array", "items": {"type": "string"}},
                        "user": {"type": "object"},
                        "project": {"type": "object"},
                        "roles": {"type": "array", "items": {"type": "object"}},
                        "catalog": {"type": "array", "items": {"type": "object"}},
                        "expires_at": {"type": "string"},
                        "issued_at": {"type": "string"},
                    },
                }
            },
        },
        "IdentityError": {
            "type": "object",
            "description": "Keystone's error shape.",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "title", "message"],
                    "properties": {
                        "code": {"type": "integer"},
                        "title": {"type": "string"},
                        "message": {"type": "string"},
                        "identity": {"type": "object"},
                    },
                }
            },
        },
        "OpenAPI": {
            "type": "object",
            "required": ["openapi", "info", "paths"],
            "properties": {"openapi": {"type": "string"}},
        },
    }
