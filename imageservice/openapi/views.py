"""``/openapi.json`` and ``/api``: public, like ``/versions``, and served by the service itself
(no CDN, no script: the page is rendered here from the document)."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from imageservice.openapi.document import document_key, openapi_document, openapi_document_text

METHODS = ("get", "head", "post", "put", "patch", "delete")
REFERENCE = re.compile(r"&quot;#/components/schemas/([\w-]+)&quot;")


@csrf_exempt
@require_safe
def document(request: HttpRequest) -> HttpResponse:
    return HttpResponse(openapi_document_text(), content_type="application/json")


def _schema_text(schema: Any) -> SafeString:
    """The schema as indented JSON, each reference a link to the named schema."""
    text = escape(json.dumps(schema, indent=2))
    return mark_safe(REFERENCE.sub(r'"<a href="#schema-\1">\1</a>"', text))


def _content(content: dict[str, Any] | None) -> list[dict[str, str]]:
    return [
        {"media_type": media_type, "schema": _schema_text(body.get("schema", {}))}
        for media_type, body in (content or {}).items()
    ]


def _operations(paths: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for path, item in paths.items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            body = operation.get("requestBody", {})
            summary = operation.get("summary", "")
            description = operation.get("description", "")
            rows.append(
                {
                    "anchor": f"{method}-{path}",
                    "method": method.upper(),
                    "path": path,
                    "summary": summary,
                    # The views' default description repeats the summary.
                    "description": "" if description == f"{summary}." else description,
                    "tag": (operation.get("tags") or [""])[0],
                    "parameters": operation.get("parameters", []),
                    "body": _content(body.get("content")),
                    "responses": [
                        {
                            "code": code,
                            "description": answer.get("description", ""),
                            "media_types": ", ".join(answer.get("content", {})),
                            "schemas": [
                                row
                                for row in _content(answer.get("content"))
                                if row["media_type"] == "application/json"
                            ],
                        }
                        for code, answer in operation.get("responses", {}).items()
                    ],
                }
            )
    return rows


@csrf_exempt
@require_safe
def page(request: HttpRequest) -> HttpResponse:
    return HttpResponse(_page_html(document_key()))


@lru_cache(maxsize=4)
def _page_html(key: tuple[object, ...]) -> str:
    spec = openapi_document()
    schemas = spec.get("components", {}).get("schemas", {})
    context = {
        "info": spec["info"],
        "version": spec["openapi"],
        "operations": _operations(spec["paths"]),
        "schemas": [{"name": name, "text": _schema_text(s)} for name, s in schemas.items()],
    }
    return render_to_string("openapi/api.html", context)
