"""Every v2 route × every persona with Glance's default policy: the expected status code, in
local mode (tokens) and in Keystone mode (the credentials keystonemiddleware's headers give).

The image under test is owned by project A (owner, reader), shared with project B (member,
pending), invisible to project C (outsider). A route missing from the matrix, or a view method
without a policy name, fails ``test_every_route_is_in_the_matrix_with_a_policy``.
"""

from __future__ import annotations

import json

import pytest

from images import urls as image_urls
from images.models import ImageStatus
from tasks import urls as task_urls

PERSONA_ORDER = ("admin", "owner", "member", "outsider", "reader", "anonymous")

# (method, route pattern, body, expected codes in PERSONA_ORDER)
MATRIX = [
    ("get", "images", None, (200, 200, 200, 200, 200, 401)),
    ("post", "images", {"name": "new"}, (201, 201, 201, 201, 403, 401)),
    ("get", "images/<str:image_id>", None, (200, 200, 200, 404, 200, 401)),
    (
        "patch",
        "images/<str:image_id>",
        [{"op": "replace", "path": "/name", "value": "renamed"}],
        (200, 200, 403, 404, 403, 401),
    ),
    ("delete", "images/<str:image_id>", None, (204, 204, 403, 404, 403, 401)),
    ("put", "images/<str:image_id>/file", b"image-bytes", (204, 204, 403, 404, 403, 401)),
    ("get", "images/<str:image_id>/file", None, (204, 204, 204, 404, 403, 401)),
    ("put", "images/<str:image_id>/stage", b"image-bytes", (204, 204, 403, 404, 403, 401)),
    (
        "post",
        "images/<str:image_id>/import",
        {"method": {"name": "copy-image"}},
        (202, 403, 403, 404, 403, 401),
    ),
    ("get", "info/import", None, (200, 200, 200, 200, 200, 401)),
    ("get", "images/<str:image_id>/tasks", None, (200, 200, 200, 404, 200, 401)),
    ("get", "tasks", None, (200, 403, 403, 403, 403, 401)),
    ("post", "tasks", {"input": {}}, (400, 403, 403, 403, 403, 401)),
    ("get", "tasks/<str:task_id>", None, (404, 403, 403, 403, 403, 401)),
    ("delete", "tasks/<str:task_id>", None, (405, 403, 403, 403, 403, 401)),
    ("post", "images/<str:image_id>/actions/deactivate", None, (204, 204, 403, 404, 403, 401)),
    ("post", "images/<str:image_id>/actions/reactivate", None, (204, 204, 403, 404, 403, 401)),
    ("put", "images/<str:image_id>/tags/<str:tag>", None, (204, 204, 403, 404, 403, 401)),
    ("delete", "images/<str:image_id>/tags/<str:tag>", None, (204, 204, 403, 404, 403, 401)),
    ("get", "images/<str:image_id>/members", None, (200, 200, 200, 404, 200, 401)),
    (
        "post",
        "images/<str:image_id>/members",
        {"member": "project-d"},
        (200, 200, 403, 404, 403, 401),
    ),
    ("get", "images/<str:image_id>/members/<str:member_id>", None, (200, 200, 200, 404, 200, 401)),
    (
        "put",
        "images/<str:image_id>/members/<str:member_id>",
        {"status": "accepted"},
        (200, 403, 200, 404, 403, 401),
    ),
    (
        "delete",
        "images/<str:image_id>/members/<str:member_id>",
        None,
        (204, 204, 403, 404, 403, 401),
    ),
    ("get", "info/stores", None, (404, 404, 404, 404, 404, 401)),
    ("get", "info/stores/detail", None, (404, 403, 403, 403, 403, 401)),
    ("get", "info/usage", None, (200, 200, 200, 200, 200, 401)),
    # Single store, as Glance without enabled_backends: the route does not exist.
    ("delete", "stores/<str:store_id>/<str:image_id>", None, (404, 404, 404, 404, 404, 401)),
    *[
        ("get", f"schemas/{name}", None, (200, 200, 200, 200, 200, 401))
        for name in ("image", "images", "member", "members", "task", "tasks")
    ],
]

CASES = [
    pytest.param(method, route, body, persona, code, id=f"{method} {route} {persona}")
    for method, route, body, codes in MATRIX
    for persona, code in zip(PERSONA_ORDER, codes, strict=True)
]


@pytest.fixture(params=["local", "keystone"])
def mode(request) -> str:
    if request.param == "keystone":
        request.getfixturevalue("keystone_mode")
    return request.param


@pytest.fixture
def shared_image(make_image, member):
    status = ImageStatus.ACTIVE
    return make_image(
        name="matrix",
        status=status,
        disk_format="raw",
        container_format="bare",
        tags=["t"],
        members={member.project_id: "pending"},
    )


def _client(persona, personas, anonymous, mode):
    if persona == "anonymous":
        return anonymous
    if mode == "keystone":
        return personas[persona].keystone_client()
    return personas[persona].client()


def _url(route, image, member_id):
    path = route.replace("<str:image_id>", image.id).replace("<str:tag>", "t")
    path = path.replace("<str:task_id>", "6b8c1c7e-2f7a-4d54-9a1e-000000000000")
    path = path.replace("<str:store_id>", "fast")
    return "/v2/" + path.replace("<str:member_id>", member_id)


@pytest.mark.parametrize(("method", "route", "body", "persona", "code"), CASES)
def test_route_answers_persona_with_glance_default_policy(
    method, route, body, persona, code, personas, anonymous, shared_image, member, mode
):
    if route.endswith("reactivate"):
        shared_image.status = ImageStatus.DEACTIVATED
        shared_image.save()
    if method == "put" and route.endswith(("file", "stage")):
        shared_image.status = ImageStatus.QUEUED
        shared_image.save()
    client = _client(persona, personas, anonymous, mode)
    url = _url(route, shared_image, member.project_id)
    kwargs = {}
    if isinstance(body, bytes):
        kwargs = {"data": body, "content_type": "application/octet-stream"}
    elif body is not None:
        content_type = (
            "application/openstack-images-v2.1-json-patch"
            if method == "patch"
            else "application/json"
        )
        kwargs = {"data": json.dumps(body), "content_type": content_type}

    response = getattr(client, method)(url, **kwargs)

    assert response.status_code == code, response.content


def test_every_route_is_in_the_matrix_with_a_policy():
    in_matrix = {(method, route) for method, route, _, _ in MATRIX}
    for pattern in [*image_urls.urlpatterns, *task_urls.urlpatterns]:
        view = pattern.callback.view_class
        methods = [m for m in view.http_method_names if hasattr(view, m)]
        for method in methods:
            assert method in view.policy_map, f"{pattern.pattern} {method} has no policy name"
            assert (method, str(pattern.pattern)) in in_matrix, f"{pattern.pattern} {method}"
