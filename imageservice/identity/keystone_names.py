"""Keystone project and user names for the operator console (Keystone mode), cached.

Image owners and task users are Keystone ids; the console shows names, looked up with the
service credentials of ``[keystone_authtoken]`` (the ``glance`` user needs a role that may read
projects and users, as Glance's own lookups do) and kept ``KEYSTONE_NAME_CACHE_SECONDS`` in
Django's cache. An id Keystone does not know is remembered as unknown for as long; a Keystone
that does not answer is not remembered at all, so the names come back with it.
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.core.cache import cache
from keystoneauth1 import adapter, loading, session
from keystoneauth1.exceptions import ClientException

from imageservice.identity.keystone_wsgi import AUTHTOKEN_GROUP, authtoken_config

logger = logging.getLogger(__name__)

TIMEOUT_SECONDS = 5
CACHE_PREFIX = "keystone-name"
_UNKNOWN = ""  # cached for ids Keystone answers 404 for

_adapter: adapter.Adapter | None = None
_lock = threading.Lock()


def keystone_mode() -> bool:
    return settings.AUTH_STRATEGY == "keystone"


def service_adapter() -> adapter.Adapter:
    """The identity API as the service user of ``[keystone_authtoken]``; built once per
    process (keystoneauth renews the token itself)."""
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


def _lookup(kind: str, object_id: str) -> str | None:
    key = f"{CACHE_PREFIX}:{kind}:{object_id}"
    cached = cache.get(key)
    if cached is not None:
        return cached or None
    try:
        response = service_adapter().get(f"/{kind}s/{object_id}", raise_exc=False)
    except ClientException as error:
        logger.warning("Keystone %s lookup of %s failed: %s", kind, object_id, error)
        return None
    if response.status_code == 404:
        name = _UNKNOWN
    elif response.ok:
        name = response.json()[kind]["name"]
    else:
        logger.warning("Keystone %s lookup of %s: HTTP %s", kind, object_id, response.status_code)
        return None
    cache.set(key, name, settings.KEYSTONE_NAME_CACHE_SECONDS)
    return name or None


def project_name(project_id: str | None) -> str | None:
    """The Keystone name of ``project_id``; None when unknown, or not in Keystone mode."""
    if not project_id or not keystone_mode():
        return None
    return _lookup("project", project_id)


def user_name(user_id: str | None) -> str | None:
    """The Keystone name of ``user_id``; None when unknown, or not in Keystone mode."""
    if not user_id or not keystone_mode():
        return None
    return _lookup("user", user_id)


def project_choices() -> list[tuple[str, str]]:
    """``(id, name)`` of every Keystone project, by name (the console's owner filter)."""
    if not keystone_mode():
        return []
    key = f"{CACHE_PREFIX}:projects"
    choices = cache.get(key)
    if choices is None:
        try:
            response = service_adapter().get("/projects")
        except ClientException as error:
            logger.warning("Keystone project list failed: %s", error)
            return []
        projects = response.json()["projects"]
        choices = sorted(((p["id"], p["name"]) for p in projects), key=lambda c: c[1])
        cache.set(key, choices, settings.KEYSTONE_NAME_CACHE_SECONDS)
    return choices
