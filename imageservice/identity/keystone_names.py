"""Keystone project and user names for the operator console (Keystone mode), cached.

Image owners and task users are Keystone ids; the console shows names, looked up with the
service credentials of ``[keystone_authtoken]`` (the ``glance`` user needs a role that may read
projects and users, as Glance's own lookups do) and kept ``KEYSTONE_NAME_CACHE_SECONDS`` in
Django's cache. An id Keystone does not know is remembered as unknown for as long; a Keystone
that does not answer is not remembered at all, so the names come back with it. In local mode
every function answers "nothing" without loading any Keystone library.
"""

from __future__ import annotations

import logging
from types import ModuleType

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

CACHE_PREFIX = "keystone-name"


def keystone_mode() -> bool:
    return settings.AUTH_STRATEGY == "keystone"


def _client() -> ModuleType:
    # Imported on first use: keystoneauth1 and keystonemiddleware cost ~35 MiB and 0.3 s per
    # process, which local mode, where nothing asks Keystone, need not pay.
    from imageservice.identity import keystone_client  # noqa: PLC0415

    return keystone_client


def _lookup(kind: str, object_id: str | None) -> str | None:
    if not object_id or not keystone_mode():
        return None
    key = f"{CACHE_PREFIX}:{kind}:{object_id}"
    name = cache.get(key)
    if name is None:
        client = _client()
        try:
            name = client.fetch_name(kind, object_id)
        except client.KeystoneUnavailable as error:
            logger.warning("Keystone %s lookup of %s failed: %s", kind, object_id, error)
            return None
        cache.set(key, name, settings.KEYSTONE_NAME_CACHE_SECONDS)
    return name or None


def project_name(project_id: str | None) -> str | None:
    """The Keystone name of ``project_id``; None when unknown, or not in Keystone mode."""
    return _lookup("project", project_id)


def user_name(user_id: str | None) -> str | None:
    """The Keystone name of ``user_id``; None when unknown, or not in Keystone mode."""
    return _lookup("user", user_id)


def project_choices() -> list[tuple[str, str]]:
    """``(id, name)`` of every Keystone project, by name (the console's owner filter)."""
    if not keystone_mode():
        return []
    key = f"{CACHE_PREFIX}:projects"
    choices = cache.get(key)
    if choices is None:
        client = _client()
        try:
            choices = client.fetch_projects()
        except client.KeystoneUnavailable as error:
            logger.warning("Keystone project list failed: %s", error)
            return []
        cache.set(key, choices, settings.KEYSTONE_NAME_CACHE_SECONDS)
    return choices
