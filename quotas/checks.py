"""Start-up checks of the site's limits."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning

from quotas.models import UNLIMITED

DEFAULT_SETTINGS = (
    "QUOTA_IMAGE_SIZE_TOTAL",
    "QUOTA_IMAGE_STAGE_TOTAL",
    "QUOTA_IMAGE_COUNT_TOTAL",
    "QUOTA_IMAGE_COUNT_UPLOADING",
)


def check_default_limits(app_configs=None, **kwargs) -> list[CheckMessage]:
    return [
        Error(
            f"{name} must be -1 (unlimited) or more (got {getattr(settings, name)}).",
            hint=f"Unset {name} for no limit.",
            id="imageservice.E070",
        )
        for name in DEFAULT_SETTINGS
        if getattr(settings, name) < UNLIMITED
    ]


def check_keystone_limits(app_configs=None, **kwargs) -> list[CheckMessage]:
    """A Glance file asking for Keystone's unified limits would otherwise seem to work."""
    if not settings.USE_KEYSTONE_LIMITS:
        return []
    return [
        Warning(
            "use_keystone_limits is on, but Keystone's unified limits are not read here.",
            hint="Set the QUOTA_IMAGE_* defaults and per-project limits (console or "
            "manage.py project_limits) instead; docs/configuration.md#quotas.",
            id="imageservice.W071",
        )
    ]
