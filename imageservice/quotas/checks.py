"""Start-up checks of the site's limits."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import CheckMessage, Error

from imageservice.quotas.models import UNLIMITED

# oslo.limit also finds the endpoint by service type and region; we take its id only.
OSLO_LIMIT_NEEDED = ("auth_url", "endpoint_id")
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
    """Keystone's unified limits need to know how to reach Keystone and whose limits apply."""
    if not settings.USE_KEYSTONE_LIMITS:
        return []
    missing = [name for name in OSLO_LIMIT_NEEDED if not settings.OSLO_LIMIT.get(name)]
    if not missing:
        return []
    return [
        Error(
            f"use_keystone_limits is on but [oslo_limit] lacks {', '.join(missing)}.",
            hint="Give [oslo_limit] the auth options of a user that may read limits and "
            "endpoints, and endpoint_id (OSLO_LIMIT_<OPTION> in the environment).",
            id="imageservice.E071",
        )
    ]
