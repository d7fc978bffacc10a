"""The console's "Add image" page without a browser: what it offers, and the short-lived token
its script gets for the Image API (operators only, POST with CSRF, expiring)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from imageservice.identity.models import ApiToken
from imageservice.identity.services import CONSOLE_TOKEN_DESCRIPTION

TOKEN_URL = "/admin/images/image/add/token/"


@pytest.fixture
def operator(admin) -> Client:
    client = Client()
    client.force_login(admin.user)
    return client


def test_add_page_offers_the_enabled_import_methods(operator, settings):
    settings.ENABLED_IMPORT_METHODS = ["glance-direct", "copy-image"]

    response = operator.get("/admin/images/image/add/")

    assert response.status_code == 200
    assert [value for value, _ in response.context["sources"]] == ["glance-direct"]
    assert 'value="web-download"' not in response.content.decode()


def test_image_list_links_to_the_add_page(operator):
    response = operator.get("/admin/images/image/")

    assert 'href="/admin/images/image/add/" class="addlink"' in response.content.decode()


def test_console_token_is_the_operators_and_expires(operator, admin, settings):
    settings.CONSOLE_TOKEN_SECONDS = 600

    response = operator.post(TOKEN_URL)

    assert response.status_code == 200
    raw_token = response.json()["token"]
    token = ApiToken.objects.get(prefix=raw_token[:8])
    assert (token.user, token.description) == (admin.user, CONSOLE_TOKEN_DESCRIPTION)
    assert abs(token.expires_at - (timezone.now() + timedelta(seconds=600))) < timedelta(seconds=30)
    api = Client(HTTP_X_AUTH_TOKEN=raw_token)
    created = api.post("/v2/images", {"name": "by token"}, content_type="application/json")
    assert created.status_code == 201, created.content
    assert created.json()["owner"] == admin.project_id


def test_console_token_needs_a_post_with_the_csrf_token(admin):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin.user)

    assert client.get(TOKEN_URL).status_code == 405
    assert client.post(TOKEN_URL).status_code == 403
    assert not ApiToken.objects.filter(description=CONSOLE_TOKEN_DESCRIPTION).exists()


def test_console_token_is_not_issued_to_non_operators(owner):
    client = Client()
    client.force_login(owner.user)

    response = client.post(TOKEN_URL)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert not ApiToken.objects.filter(description=CONSOLE_TOKEN_DESCRIPTION).exists()


def test_add_page_is_not_offered_in_keystone_mode(operator, keystone_mode):
    # The API then trusts Keystone's tokens only, which the console cannot issue.
    assert operator.get("/admin/images/image/add/").status_code == 403
    assert operator.post(TOKEN_URL).status_code == 403
    assert "addlink" not in operator.get("/admin/images/image/").content.decode()
