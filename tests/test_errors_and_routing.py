"""Error bodies, content negotiation, routing and the versions document (§1, §2.3, §2.4)."""

from __future__ import annotations

import json

import pytest

MISSING = "/v2/images/1234"


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        ("*/*", "text/html; charset=UTF-8"),
        ("application/json", "application/json"),
        ("*/*;q=0.8, application/json", "application/json"),
        ("application/json, */*", "text/html; charset=UTF-8"),
        (None, "text/plain; charset=UTF-8"),
        ("", "text/plain; charset=UTF-8"),
        ("text/plain", "text/plain; charset=UTF-8"),
    ],
)
def test_error_representation_follows_accept_like_webob(owner, accept, content_type):
    extra = {} if accept is None else {"HTTP_ACCEPT": accept}

    response = owner.client().get(MISSING, **extra)

    assert response.status_code == 404
    assert response["Content-Type"] == content_type


def test_error_bodies_match_webob_templates(owner):
    client = owner.client()
    as_json = client.get(MISSING, HTTP_ACCEPT="application/json").json()
    as_html = client.get(MISSING, HTTP_ACCEPT="*/*").content.decode()
    as_text = client.get(MISSING).content.decode()

    assert as_json == {
        "message": "No image found with ID 1234<br /><br />\n\n\n",
        "code": "404 Not Found",
        "title": "Not Found",
    }
    assert as_html == (
        "<html>\n <head>\n  <title>404 Not Found</title>\n </head>\n <body>\n"
        "  <h1>404 Not Found</h1>\n  No image found with ID 1234<br /><br />\n\n\n\n"
        " </body>\n</html>"
    )
    assert as_text == "404 Not Found\n\nNo image found with ID 1234\n\n   "


def test_html_error_escapes_the_message(owner):
    response = owner.client().post(
        "/v2/images",
        data=json.dumps({"status": "active"}),
        content_type="application/json",
        HTTP_ACCEPT="*/*",
    )

    assert response.status_code == 403
    assert "Attribute &#x27;status&#x27; is read-only." in response.content.decode()


@pytest.mark.parametrize("path", ["/v2/images/", "/v2/nothing", "/v2/images/x/y/z"])
def test_unknown_v2_routes_are_404_in_glance_shape(owner, path):
    response = owner.client().get(path, HTTP_ACCEPT="application/json")

    assert response.status_code == 404
    assert response.json()["code"] == "404 Not Found"


def test_known_route_with_unserved_method_is_405_with_allow(owner):
    response = owner.client().put("/v2/images", HTTP_ACCEPT="application/json")

    assert response.status_code == 405
    assert response["Allow"] == "GET, POST"
    assert response.json()["message"].startswith("The method PUT is not allowed for this resource.")


def test_v2_without_its_slash_is_a_redirect_to_v2_root(client):
    response = client.get("/v2")

    assert response.status_code == 302
    assert response["Location"] == "http://testserver/v2/"


def test_task_delete_is_405_allowing_only_get(admin):
    response = admin.client().delete("/v2/tasks/some-task", HTTP_ACCEPT="application/json")

    assert response.status_code == 405
    assert response["Allow"] == "GET"
    assert response.json()["message"].startswith(
        "This operation is currently not permitted on Glance Tasks."
    )


def test_head_is_not_served(owner):
    assert owner.client().head("/v2/images").status_code == 405


@pytest.mark.parametrize("header", [None, "unknown-token"])
def test_missing_or_unknown_token_is_401(db, anonymous, header):
    extra = {} if header is None else {"HTTP_X_AUTH_TOKEN": header}

    response = anonymous.get("/v2/images", HTTP_ACCEPT="application/json", **extra)

    assert response.status_code == 401
    assert response.json()["title"] == "Unauthorized"


def test_request_id_is_generated_or_echoed(owner):
    generated = owner.client().get("/v2/images")
    echoed = owner.client().get("/v2/images", HTTP_X_OPENSTACK_REQUEST_ID="abc")
    too_long = owner.client().get("/v2/images", HTTP_X_OPENSTACK_REQUEST_ID="x" * 65)

    assert generated["x-openstack-request-id"].startswith("req-")
    assert echoed["x-openstack-request-id"] == "req-abc"
    assert too_long.status_code == 431


def test_versions_with_a_slash_is_the_same_200(client):
    assert client.get("/versions/").status_code == 200
    assert client.get("/versions/").json() == client.get("/versions").json()


def test_versions_is_200_and_root_is_300_with_absolute_v2_href(client):
    versions = client.get("/versions")
    root = client.get("/")
    other = client.get("/v1/images")

    assert versions.status_code == 200
    assert root.status_code == 300 and other.status_code == 300
    assert versions.json() == root.json() == other.json()
    entries = versions.json()["versions"]
    assert [e["status"] for e in entries].count("CURRENT") == 1
    assert entries[0] == {
        "id": "v2.12",
        "status": "CURRENT",
        "links": [{"rel": "self", "href": "http://testserver/v2/"}],
    }
    assert {e["id"] for e in entries} == {f"v2.{minor}" for minor in (*range(8), 9, 12)}


def test_versions_honours_public_endpoint(client, settings):
    settings.PUBLIC_ENDPOINT = "https://images.example.com:9292"

    href = client.get("/versions").json()["versions"][0]["links"][0]["href"]

    assert href == "https://images.example.com:9292/v2/"


def test_api_is_exempt_from_csrf(owner):
    client = owner.client()
    client.handler.enforce_csrf_checks = True

    response = client.post("/v2/images", data="{}", content_type="application/json")

    assert response.status_code == 201


def test_empty_accept_is_not_refused_on_success(owner):
    response = owner.client().post(
        "/v2/images", data="{}", content_type="application/json", HTTP_ACCEPT=""
    )

    assert response.status_code == 201
    assert response["Content-Type"] == "application/json"


def test_minor_version_path_is_an_alias_of_v2(owner):
    aliased = owner.client().get("/v2.5/images")
    unknown = owner.client().get("/v2.99/images")

    assert aliased.status_code == 200 and "images" in aliased.json()
    assert unknown.status_code == 300


def test_any_method_on_an_unversioned_path_gets_the_300_document(client):
    client.handler.enforce_csrf_checks = True

    response = client.post("/images", data="{}", content_type="application/json")

    assert response.status_code == 300
    assert response.json()["versions"][0]["id"] == "v2.12"


def test_unknown_path_with_a_newline_is_the_300_document(client):
    assert client.get("/a%0Ab").status_code == 300
