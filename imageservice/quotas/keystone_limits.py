"""Limits from Keystone's unified limits, for ``use_keystone_limits`` (Glance's
``glance.quota.keystone``), read as oslo.limit reads them: for each resource the project's own
limit, else the registered default of the endpoint's service and region, else 0.

Keystone is reached with the ``[oslo_limit]`` auth options; ``endpoint_id`` names the endpoint
whose service and region the limits belong to. Imported on first use, so that a site without
Keystone's limits never loads keystoneauth1.
"""

from __future__ import annotations

import threading
import time

from django.conf import settings
from keystoneauth1 import adapter, loading, session
from keystoneauth1.exceptions import ClientException

from imageservice.errors import GlanceError
from imageservice.quotas.models import LIMIT_NAMES

TIMEOUT_SECONDS = 5

_lock = threading.Lock()
_identity: adapter.Adapter | None = None
_endpoint: dict[str, str] | None = None
# project → (monotonic expiry, limits): a check reads Keystone at most once per cache period.
_cached: dict[str, tuple[float, dict[str, int]]] = {}


def keystone_limits(project: str | None) -> dict[str, int]:
    """The project's four limits as Keystone sets them; 503 when Keystone cannot tell."""
    key = project or ""
    now = time.monotonic()
    with _lock:
        cached = _cached.get(key)
    if cached and cached[0] > now:
        return cached[1]
    try:
        limits = _fetch(key)
    except (ClientException, KeyError, ValueError) as error:
        raise GlanceError(
            503, f"The project's limits could not be read from Keystone: {error}"
        ) from error
    with _lock:
        _cached[key] = (now + settings.KEYSTONE_LIMITS_CACHE_SECONDS, limits)
    return limits


def forget() -> None:
    """Drop the session, the endpoint and the cached limits (tests change the settings)."""
    global _identity, _endpoint
    with _lock:
        _identity, _endpoint = None, None
        _cached.clear()


def _fetch(project: str) -> dict[str, int]:
    identity = _identity_adapter()
    scope = _endpoint_scope(identity)
    registered = identity.get("/registered_limits", params=scope).json()["registered_limits"]
    limits = dict.fromkeys(LIMIT_NAMES, 0)
    for row in registered:
        limits[row["resource_name"]] = row["default_limit"]
    if project:
        own = identity.get("/limits", params={**scope, "project_id": project}).json()["limits"]
        for row in own:
            limits[row["resource_name"]] = row["resource_limit"]
    # Other services' resources (or ours Glance does not know) are not limits of ours.
    return {name: limits[name] for name in LIMIT_NAMES}


def _identity_adapter() -> adapter.Adapter:
    global _identity
    with _lock:
        if _identity is None:
            options = settings.OSLO_LIMIT
            loader = loading.get_plugin_loader(options.get("auth_type", "password"))
            given = {
                option.dest: options[option.dest]
                for option in loader.get_options()
                if option.dest in options
            }
            _identity = adapter.Adapter(
                session.Session(auth=loader.load_from_options(**given), timeout=TIMEOUT_SECONDS),
                service_type="identity",
                interface=options.get("valid_interfaces", "public"),
                region_name=options.get("region_name"),
                version=(3, 0),
            )
        return _identity


def _endpoint_scope(identity: adapter.Adapter) -> dict[str, str]:
    """``service_id`` and ``region_id`` of ``[oslo_limit] endpoint_id``: whose limits apply."""
    global _endpoint
    if _endpoint is None:
        endpoint_id = settings.OSLO_LIMIT["endpoint_id"]
        endpoint = identity.get(f"/endpoints/{endpoint_id}").json()["endpoint"]
        scope = {"service_id": endpoint["service_id"]}
        if endpoint.get("region_id"):
            scope["region_id"] = endpoint["region_id"]
        _endpoint = scope
    return _endpoint
