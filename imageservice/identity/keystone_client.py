"""The identity API as the service user of ``[keystone_authtoken]`` (Keystone mode only).

Imported on first use by :mod:`imageservice.identity.keystone_names`, so that local mode never
loads keystoneauth1 and keystonemiddleware.
"""

from __future__ import annotations

import threading

from django.conf import settings
from keystoneauth1 import adapter, loading, session
from keystoneauth1.exceptions import ClientException

from imageservice.identity.keystone_wsgi import AUTHTOKEN_GROUP, authtoken_config

TIMEOUT_SECONDS = 5

_adapter: adapter.Adapter | None = None
_lock = threading.Lock()


class KeystoneUnavailable(Exception):
    """Keystone did not answer, or answered with an error other than 404."""


def service_adapter() -> adapter.Adapter:
    """Built once per process; keystoneauth renews the service token itself."""
    global _adapter
    with _lock:
        if _adapter is None:
            options = settings.KEYSTONE_AUTHTOKEN
            auth = loading.load_auth_from_conf_options(authtoken_config(options), AUTHTOKEN_GROUP)
            verify = options.get("cafile") or options.get("insecure", "").lower() != "true"
            _adapter = adapter.Adapter(
                session.Session(auth=auth, verify=verify, timeout=TIMEOUT_SECONDS),
                service_type="identity",
                interface=options.get("interface", "internal"),
                region_name=options.get("region_name"),
                version=(3, 0),
            )
        return _adapter


def forget_service_adapter() -> None:
    """Drop the service session (tests change the settings it was built from)."""
    global _adapter
    with _lock:
        _adapter = None


def fetch_name(kind: str, object_id: str) -> str:
    """The name of the ``kind`` (``project`` or ``user``) ``object_id``; "" when Keystone has
    none such."""
    try:
        response = service_adapter().get(f"/{kind}s/{object_id}", raise_exc=False)
    except ClientException as error:
        raise KeystoneUnavailable(str(error)) from error
    if response.status_code == 404:
        return ""
    if not response.ok:
        raise KeystoneUnavailable(f"HTTP {response.status_code}")
    return response.json()[kind]["name"]


def fetch_projects() -> list[tuple[str, str]]:
    """``(id, name)`` of every project, by name."""
    try:
        projects = service_adapter().get("/projects").json()["projects"]
    except ClientException as error:
        raise KeystoneUnavailable(str(error)) from error
    return sorted(((project["id"], project["name"]) for project in projects), key=lambda c: c[1])
