"""``use_keystone_limits`` against the real Keystone: registered limits for an endpoint of our
own, a project limit overriding one of them, read through ``[oslo_limit]`` (as the environment's
``OSLO_LIMIT_<OPTION>``), shown by ``/v2/info/usage`` and enforced on create."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests

DEFAULTS = {
    "image_size_total": 100,
    "image_stage_total": 50,
    "image_count_total": 5,
    "image_count_uploading": 3,
}


@pytest.fixture
def limited_endpoint(keystone, unique) -> Iterator[str]:
    """A service and endpoint of this test's own (sessions share the Keystone), with the four
    registered limits and, for project alpha, image_count_total 0; all removed afterwards."""
    admin = keystone.session("admin")
    url, region = keystone.auth_url, keystone.facts["KEYSTONE_REGION"]
    service = admin.post(
        f"{url}/services", json={"service": {"type": f"image-limits-{unique}", "name": unique}}
    ).json()["service"]
    try:
        endpoint = admin.post(
            f"{url}/endpoints",
            json={
                "endpoint": {
                    "service_id": service["id"],
                    "interface": "public",
                    "region_id": region,
                    "url": "http://127.0.0.1:9",
                }
            },
        ).json()["endpoint"]
        scope = {"service_id": service["id"], "region_id": region}
        admin.post(
            f"{url}/registered_limits",
            json={
                "registered_limits": [
                    {**scope, "resource_name": name, "default_limit": value}
                    for name, value in DEFAULTS.items()
                ]
            },
        )
        admin.post(
            f"{url}/limits",
            json={
                "limits": [
                    {
                        **scope,
                        "project_id": keystone.project_id("alpha"),
                        "resource_name": "image_count_total",
                        "resource_limit": 0,
                    }
                ]
            },
        )
        yield endpoint["id"]
    finally:
        for kind in ("limits", "registered_limits"):
            rows = admin.get(f"{url}/{kind}", params={"service_id": service["id"]}).json()[kind]
            for row in rows:
                admin.delete(f"{url}/{kind}/{row['id']}")
        for row in admin.get(f"{url}/endpoints", params={"service_id": service["id"]}).json()[
            "endpoints"
        ]:
            admin.delete(f"{url}/endpoints/{row['id']}")
        admin.delete(f"{url}/services/{service['id']}")


@pytest.fixture
def limited_service(keystone, keystone_variant, limited_endpoint):
    return keystone_variant(
        USE_KEYSTONE_LIMITS="true",
        OSLO_LIMIT_AUTH_URL=keystone.auth_url,
        OSLO_LIMIT_AUTH_TYPE="password",
        OSLO_LIMIT_USERNAME="glance",
        OSLO_LIMIT_PASSWORD=keystone.password("glance"),
        OSLO_LIMIT_PROJECT_NAME="service",
        OSLO_LIMIT_USER_DOMAIN_NAME="Default",
        OSLO_LIMIT_PROJECT_DOMAIN_NAME="Default",
        OSLO_LIMIT_ENDPOINT_ID=limited_endpoint,
    )


def usage_for(service, token: str) -> dict[str, dict[str, int]]:
    response = requests.get(
        f"{service.url}/v2/info/usage", headers={"X-Auth-Token": token}, timeout=30
    )
    assert response.status_code == 200
    return response.json()["usage"]


def test_usage_shows_keystones_registered_and_project_limits(keystone, limited_service):
    alpha = usage_for(limited_service, keystone.token("alice"))
    beta = usage_for(limited_service, keystone.token("bob"))

    assert {name: entry["limit"] for name, entry in beta.items()} == DEFAULTS
    assert {name: entry["limit"] for name, entry in alpha.items()} == {
        **DEFAULTS,
        "image_count_total": 0,
    }


def test_create_over_keystones_project_limit_is_413(keystone, limited_service, unique):
    create = {"name": f"limited-{unique}", "disk_format": "raw", "container_format": "bare"}

    refused = requests.post(
        f"{limited_service.url}/v2/images",
        headers={"X-Auth-Token": keystone.token("alice"), "Accept": "application/json"},
        data=json.dumps(create),
        timeout=30,
    )
    allowed = requests.post(
        f"{limited_service.url}/v2/images",
        headers={"X-Auth-Token": keystone.token("bob")},
        data=json.dumps(create),
        timeout=30,
    )

    assert refused.status_code == 413
    message = refused.json()["message"]
    assert message.startswith("The request returned a 413 Request Entity Too Large.")
    # Other tests may have left project alpha images: its current usage is not known here.
    assert (
        f"Project {keystone.project_id('alpha')} is over a limit for [Resource "
        "image_count_total is over limit of 0 due to current usage "
    ) in message
    assert " and delta 1]" in message
    assert allowed.status_code == 201
    requests.delete(
        f"{limited_service.url}/v2/images/{allowed.json()['id']}",
        headers={"X-Auth-Token": keystone.token("bob")},
        timeout=30,
    )
