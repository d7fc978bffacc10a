"""The service catalog of local mode: this image endpoint and the identity endpoint.

Both are served by this process, so each interface (public, internal, admin) has the same URL:
``PUBLIC_ENDPOINT`` when set, else the address the client reached us at.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.http import HttpRequest

INTERFACES = ("public", "internal", "admin")
# Keystone gives services and endpoints 32-hex ids; ours are derived from the URL, so they stay
# the same across processes and restarts without being stored anywhere.
ID_NAMESPACE = uuid.UUID("1f0c4e0e-6a57-4d2c-9a49-3c2f3b8c1d7e")


def service_base_url(request: HttpRequest) -> str:
    return settings.PUBLIC_ENDPOINT.rstrip("/") or request.build_absolute_uri("/").rstrip("/")


def identity_base_url(request: HttpRequest) -> str:
    return f"{service_base_url(request)}/identity"


def identity_v3_url(request: HttpRequest) -> str:
    return f"{identity_base_url(request)}/v3"


def stable_id(*parts: str) -> str:
    return uuid.uuid5(ID_NAMESPACE, "\n".join(parts)).hex


def catalog_entry(service_type: str, name: str, url: str) -> dict[str, object]:
    region = settings.REGION_NAME
    return {
        "id": stable_id(service_type, url),
        "type": service_type,
        "name": name,
        "endpoints": [
            {
                "id": stable_id(service_type, url, interface),
                "interface": interface,
                "region": region,
                "region_id": region,
                "url": url,
            }
            for interface in INTERFACES
        ],
    }


def service_catalog(request: HttpRequest) -> list[dict[str, object]]:
    """Keystone's v3 ``catalog``: where clients find the image API and the identity API."""
    return [
        catalog_entry("image", "glance", service_base_url(request)),
        catalog_entry("identity", "keystone", identity_base_url(request)),
    ]
