"""``/openapi.json`` describes every route, and ``/api`` renders it without outside resources."""

from __future__ import annotations

import re

import jsonschema
import pytest
import schemathesis
from django.urls import URLPattern, URLResolver, get_resolver
from django.views import View
from rest_framework.test import APIClient
from rest_framework.views import APIView

# The regular-expression routes, as the document names them.
REGEX_ROUTES = {
    # imageservice/urls.py: any unversioned path answers the versions document.
    "^(?!v2(?:/|$)|identity(?:/|$)|admin/|static/)[\\s\\S]+$": "/{path}",
    # imageservice/identity/keystone_api/urls.py: any other identity path answers 404.
    "identity/^[\\s\\S]*$": "/identity/{path}",
}
METHODS = ("get", "head", "post", "put", "patch", "delete")


def _routes(resolver: URLResolver, prefix: str = "") -> list[tuple[str, object]]:
    """(route as written, view callback) of every pattern, includes followed; the console's
    include counts as one route."""
    routes = []
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            if entry.app_name == "admin":
                routes.append((route, None))
            else:
                routes.extend(_routes(entry, route))
        else:
            assert isinstance(entry, URLPattern)
            routes.append((route, entry.callback))
    return routes


def _openapi_path(route: str) -> str:
    if route in REGEX_ROUTES:
        return REGEX_ROUTES[route]
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)


def _methods(callback) -> set[str]:
    view = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if view is None:
        return {"get"}  # function views: only GET is meaningful (and documented)
    if issubclass(view, APIView | View):
        return {m for m in view.http_method_names if m in METHODS and hasattr(view, m)} - (
            {"head"} if issubclass(view, APIView) else set()
        )
    return {"get"}


@pytest.fixture
def document(db) -> dict:
    response = APIClient().get("/openapi.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    return response.json()


def test_openapi_lists_every_url_pattern_and_method(document):
    missing = []
    routes = _routes(get_resolver())
    for route, callback in routes:
        path = _openapi_path(route)
        documented = document["paths"].get(path)
        if documented is None:
            missing.append(path)
            continue
        methods = {"get"} if callback is None else _methods(callback)
        missing += [f"{m.upper()} {path}" for m in sorted(methods) if m not in documented]
    assert missing == []
    # The walk followed the includes.
    assert ("identity/v3/auth/tokens" in dict(routes)) and len(routes) >= 35


def test_openapi_documents_nothing_that_is_not_routed(document):
    routed = {_openapi_path(route) for route, _ in _routes(get_resolver())}
    assert set(document["paths"]) - routed == set()


def test_openapi_is_a_loadable_3_1_document(document):
    assert document["openapi"] == "3.1.0"
    schema = schemathesis.openapi.from_dict(document)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == sum(
        1 for item in document["paths"].values() for method in item if method in METHODS
    )
    for name, component in document["components"]["schemas"].items():
        jsonschema.Draft202012Validator.check_schema(component), name


def test_openapi_embeds_the_served_glance_schemas(document, reader):
    client = reader.client()
    for name in ("image", "images", "member", "members", "task", "tasks"):
        served = client.get(f"/v2/schemas/{name}").json()
        assert document["components"]["schemas"][name] == served
        answer = document["paths"][f"/v2/schemas/{name}"]["get"]["responses"]["200"]
        assert answer["content"]["application/json"]["schema"]["const"] == served


def test_openapi_request_bodies_follow_the_validation(document):
    create = document["components"]["schemas"]["ImageCreate"]["properties"]
    assert "status" not in create and "locations" not in create and "checksum" not in create
    assert create["min_ram"]["maximum"] == 2**31 - 1
    patch = document["paths"]["/v2/images/{image_id}"]["patch"]["requestBody"]["content"]
    assert set(patch) == {
        "application/openstack-images-v2.1-json-patch",
        "application/openstack-images-v2.0-json-patch",
    }
    upload = document["paths"]["/v2/images/{image_id}/file"]["put"]["requestBody"]["content"]
    assert set(upload) == {"application/octet-stream"}


def test_openapi_errors_in_glance_shapes(document):
    show = document["paths"]["/v2/images/{image_id}"]["get"]["responses"]
    assert set(show) == {"200", "400", "401", "403", "404", "431"}
    assert set(show["404"]["content"]) == {"application/json", "text/html", "text/plain"}
    error = show["404"]["content"]["application/json"]["schema"]
    assert error == {"$ref": "#/components/schemas/Error"}
    assert document["components"]["securitySchemes"] == {
        "token": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"}
    }


def test_openapi_follows_the_configured_formats(db, settings):
    settings.DISK_FORMATS = ["raw", "qcow2"]
    document = APIClient().get("/openapi.json").json()
    create = document["components"]["schemas"]["ImageCreate"]["properties"]
    assert create["disk_format"]["enum"] == [None, "raw", "qcow2"]


def test_api_page_shows_every_operation_without_outside_resources(db, document):
    response = APIClient().get("/api")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    page = response.content.decode()
    for path, item in document["paths"].items():
        for method in item:
            assert f'id="{method}-{path}"' in page
    # Nothing loaded from anywhere: no scripts, no stylesheets, no images.
    assert "<script" not in page
    assert re.findall(r"<link|src=|@import|url\(", page) == []
    assert re.findall(r'href="(?!#|/)', page) == []
    assert '<a href="#schema-image">image</a>' in page
