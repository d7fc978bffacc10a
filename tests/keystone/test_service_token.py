"""``X-Service-Token`` through keystonemiddleware: the service role it must carry, and the
``service_user_id``/``service_roles`` credentials it gives the policy."""

from __future__ import annotations

import pytest
import requests

PAYLOAD = b"service token payload"


def images_get(service, headers):
    return requests.get(f"{service.url}/v2/images?limit=1", headers=headers, timeout=30)


def test_service_token_with_the_service_role_is_accepted(keystone, keystone_service):
    headers = {"X-Auth-Token": keystone.token("alice"), "X-Service-Token": keystone.token("glance")}

    assert images_get(keystone_service, headers).status_code == 200


def test_service_token_without_the_service_role_is_401(keystone, keystone_service):
    # service_token_roles_required = true in the server's [keystone_authtoken].
    headers = {"X-Auth-Token": keystone.token("alice"), "X-Service-Token": keystone.token("helper")}

    response = images_get(keystone_service, headers)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == f'Keystone uri="{keystone.auth_url}"'


@pytest.fixture(scope="module")
def upload_for_services(keystone, keystone_variant, tmp_path_factory):
    """A server where only the service role, or the helper service user by id, may upload;
    service tokens without the role pass the middleware there (roles not required)."""
    policy = tmp_path_factory.mktemp("service-policy") / "policy.yaml"
    helper = keystone.user_id("helper")
    policy.write_text(
        f'upload_image: "role:admin or (service_user_id:{helper}) or (service_roles:service)"\n'
    )
    return keystone_variant(
        POLICY_FILE=str(policy), KEYSTONE_AUTHTOKEN_SERVICE_TOKEN_ROLES_REQUIRED="false"
    )


def upload(service, headers) -> int:
    image = requests.post(
        f"{service.url}/v2/images",
        json={"name": "for-services", "disk_format": "raw", "container_format": "bare"},
        headers={"X-Auth-Token": headers["X-Auth-Token"]},
        timeout=30,
    )
    assert image.status_code == 201, image.text
    response = requests.put(
        f"{service.url}/v2/images/{image.json()['id']}/file",
        data=PAYLOAD,
        headers={**headers, "Content-Type": "application/octet-stream"},
        timeout=30,
    )
    requests.delete(
        f"{service.url}/v2/images/{image.json()['id']}",
        headers={"X-Auth-Token": headers["X-Auth-Token"]},
        timeout=30,
    )
    return response.status_code


@pytest.mark.parametrize(
    ("service_user", "expected"),
    [
        (None, 403),  # alice alone: a member, no service credentials
        ("bob", 403),  # a valid service token, but neither the role nor the id
        ("glance", 204),  # service_roles:service
        ("helper", 204),  # service_user_id:<helper's id>, no service role
    ],
)
def test_upload_rule_on_service_credentials(keystone, upload_for_services, service_user, expected):
    headers = {"X-Auth-Token": keystone.token("alice")}
    if service_user:
        headers["X-Service-Token"] = keystone.token(service_user)

    assert upload(upload_for_services, headers) == expected
