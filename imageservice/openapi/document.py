"""The OpenAPI 3.1 document of the whole service, as ``/openapi.json`` serves it.

drf-spectacular walks the URL configuration and reads the DRF views' ``glance_operation``
declarations (the image API under /v2); the calls that are plain Django views (the versions
documents, the embedded Keystone login calls, the catch-alls, the console's entry and this
document's own pages) are described here. ``components.schemas`` holds the Glance documents
of /v2/schemas/* and the bodies derived from them.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from django.conf import settings
from drf_spectacular.generators import SchemaGenerator

from images.schemas import image_schema_key
from imageservice.openapi.components import Schema, component_schemas, ref
from imageservice.openapi.operations import JSON

SCHEMA_DOCUMENTS = ("image", "images", "member", "members", "task", "tasks")
IDENTITY_JSON = "application/json"
DESCRIPTION = (
    "The OpenStack Glance Image API v2 as this service speaks it, its version documents and "
    "the Keystone v3 login calls it embeds at /identity. Every /v2 path is also served under "
    "/v2.N for each advertised minor version N. Errors come in Glance's shape: HTML by "
    "default (`Accept: */*`), JSON for `Accept: application/json`, plain text without "
    "`Accept`. Authenticate with `X-Auth-Token`."
)


def _plain(
    operation_id: str,
    summary: str,
    tag: str,
    responses: dict[str, Any],
    **extra: Any,
) -> dict[str, Any]:
    return {"operationId": operation_id, "summary": summary, "tags": [tag], **extra,
            "responses": responses}  # fmt: skip


def _json(description: str, schema: Schema, **extra: Any) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}, **extra}


def _text(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}}


def _identity_errors(*codes: int) -> dict[str, Any]:
    return {str(code): _json("Keystone error", ref("IdentityError")) for code in sorted(codes)}


def _subject_token(description: str) -> dict[str, Any]:
    return {"X-Subject-Token": {"description": description, "schema": {"type": "string"}}}


def _token_parameters() -> list[dict[str, Any]]:
    return [
        {"name": "X-Auth-Token", "in": "header", "required": True, "schema": {"type": "string"}},
        {"name": "X-Subject-Token", "in": "header", "required": True,
         "schema": {"type": "string"}},
        {"name": "nocatalog", "in": "query", "schema": {"type": "string"},
         "description": "Present: leave the service catalog out"},
    ]  # fmt: skip


# A catch-all's path parameter excludes the names routed beside it, but a generated request may
# still send one (schemathesis's coverage phase tries the excluded values on purpose): it then
# gets that route's answer.
ROUTED_NAME_ANSWERS: dict[str, Any] = {
    "200": {"description": "A name routed beside the catch-all, answered by its own route"},
    "302": {"description": "v2 without its slash: on to /v2/"},
}


def plain_paths() -> dict[str, dict[str, Any]]:
    versions = _json("The versions document", ref("Versions"))

    def any_path(*routed: str) -> dict[str, Any]:
        # Anything but the names routed beside the catch-all.
        schema = {"type": "string", "not": {"enum": list(routed)}}
        return {"name": "path", "in": "path", "required": True, "schema": schema}

    return {
        "/": {"get": _plain("root", "The versions document", "versions", {"300": versions})},
        "/versions": {
            "get": _plain("versions", "The versions document", "versions", {"200": versions})
        },
        "/versions/": {
            "get": _plain("versions_slash", "The versions document", "versions", {"200": versions})
        },
        "/v2": {
            "get": _plain(
                "v2_root",
                "On to /v2/",
                "versions",
                {
                    "302": {
                        "description": "To /v2/, as Glance's URL map sends it",
                        "headers": {"Location": {"schema": {"type": "string"}}},
                    }
                },
            )
        },
        "/healthcheck": {
            "get": _plain(
                "healthcheck",
                "Whether this node can serve (for load balancers; no token)",
                "versions",
                {
                    "200": _text("OK"),
                    "503": _text("DISABLED BY FILE, or DATABASE UNREACHABLE"),
                },
            )
        },
        "/metrics": {
            "get": _plain(
                "metrics",
                "Prometheus metrics of this node (METRICS_ALLOWED_ADDRESSES or METRICS_TOKEN)",
                "versions",
                {
                    "200": _text("Prometheus text exposition format"),
                    "403": _text("Not an allowed address, and no valid bearer token"),
                },
            )
        },
        "/{path}": {
            "get": _plain(
                "unversioned",
                "Any unversioned or unknown-version path",
                "versions",
                {
                    # "identity" itself, routed beside the catch-all, is the identity API's 300.
                    "300": _json(
                        "The versions document",
                        {"oneOf": [ref("Versions"), ref("IdentityVersions")]},
                    ),
                    **ROUTED_NAME_ANSWERS,
                },
                parameters=[
                    any_path(
                        "versions",
                        "v2",
                        "openapi.json",
                        "api",
                        "identity",
                        "healthcheck",
                        "metrics",
                    )
                ],
                description="300 with the versions document, as Glance.",
            )
        },
        "/openapi.json": {
            "get": _plain(
                "openapi_document",
                "This document",
                "documentation",
                {"200": _json("OpenAPI 3.1", ref("OpenAPI"))},
            )
        },
        "/api": {
            "get": _plain(
                "api_page",
                "This document as a page",
                "documentation",
                {"200": {"description": "HTML", "content": {"text/html": {"schema": {}}}}},
            )
        },
        "/admin/": {
            "get": _plain(
                "console",
                "The operator console (Django admin, HTML)",
                "console",
                {
                    "200": {"description": "The console", "content": {"text/html": {}}},
                    "302": {"description": "To the console's login page"},
                },
                description="Its pages are the Django admin's; they are not part of this API.",
            )
        },
        "/identity": {
            "get": _plain(
                "identity_versions",
                "Identity version discovery",
                "identity",
                {"300": _json("The identity versions", ref("IdentityVersions"))},
            )
        },
        "/identity/": {
            "get": _plain(
                "identity_versions_slash",
                "Identity version discovery (trailing slash)",
                "identity",
                {
                    "300": _json("The identity versions", ref("IdentityVersions")),
                    **_identity_errors(404),
                },
                description="404 in Keystone mode, where the cloud's Keystone answers.",
            )
        },
        "/identity/v3": {
            "get": _plain(
                "identity_version",
                "Identity v3 discovery",
                "identity",
                {"200": _json("Identity v3", ref("IdentityVersion")), **_identity_errors(404)},
                description="404 in Keystone mode, where the cloud's Keystone answers.",
            )
        },
        "/identity/v3/": {
            "get": _plain(
                "identity_version_slash",
                "Identity v3 discovery (trailing slash)",
                "identity",
                {"200": _json("Identity v3", ref("IdentityVersion")), **_identity_errors(404)},
            )
        },
        "/identity/v3/auth/tokens": {
            "post": _plain(
                "identity_login",
                "Log in with a password or a token",
                "identity",
                {
                    "201": _json(
                        "The new token's body",
                        ref("Token"),
                        headers=_subject_token("The new token"),
                    ),
                    **_identity_errors(400, 401, 404, 429),
                },
                requestBody={"content": {IDENTITY_JSON: {"schema": ref("AuthRequest")}}},
                parameters=[_token_parameters()[2]],
            ),
            "get": _plain(
                "identity_validate",
                "Validate a token",
                "identity",
                {
                    "200": _json("The token's body", ref("Token"), headers=_subject_token("")),
                    **_identity_errors(401, 403, 404),
                },
                parameters=_token_parameters(),
            ),
            "head": _plain(
                "identity_check",
                "Check a token",
                "identity",
                {"200": {"description": "Valid"}, **_identity_errors(401, 403, 404)},
                parameters=_token_parameters()[:2],
            ),
            "delete": _plain(
                "identity_revoke",
                "Revoke a token",
                "identity",
                {"204": {"description": "Revoked"}, **_identity_errors(401, 403, 404)},
                parameters=_token_parameters()[:2],
            ),
        },
        "/identity/{path}": {
            "get": _plain(
                "identity_unknown",
                "Any other identity path",
                "identity",
                {**_identity_errors(404), **ROUTED_NAME_ANSWERS},
                parameters=[any_path("v3")],
            )
        },
    }


def document_key() -> tuple[object, ...]:
    """Everything the document depends on beyond the code: the image schema (formats, the
    custom properties file) and the import methods."""
    return (
        image_schema_key(),
        settings.ENABLE_IMAGE_IMPORT,
        tuple(settings.ENABLED_IMPORT_METHODS),
    )


def openapi_document() -> dict[str, Any]:
    """The whole document for the current settings (a fresh copy)."""
    return json.loads(openapi_document_text())


def openapi_document_text() -> str:
    # Building it takes drf-spectacular a tenth of a second or more: once per settings.
    return _document_text(document_key())


@lru_cache(maxsize=4)
def _document_text(key: tuple[object, ...]) -> str:
    return json.dumps(_build_document())


def _build_document() -> dict[str, Any]:
    document = SchemaGenerator().get_schema(request=None, public=True)
    schemas = component_schemas()
    document["info"] = {"title": "imageservice", "version": "2", "description": DESCRIPTION}
    for name in SCHEMA_DOCUMENTS:
        # One view class serves the six documents: each path gets its own id, and its answer
        # is exactly the document embedded under components.
        operation = document["paths"][f"/v2/schemas/{name}"]["get"]
        operation["operationId"] = f"show_schema_{name}"
        operation["responses"]["200"]["content"][JSON]["schema"] = {
            "description": f"The document of #/components/schemas/{name}",
            "const": schemas[name],
        }
    document["paths"].update(plain_paths())
    document["paths"] = dict(sorted(document["paths"].items()))
    components = document.setdefault("components", {})
    components["schemas"] = {**components.get("schemas", {}), **schemas}
    return document
