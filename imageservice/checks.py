"""Start-up checks: bad configuration stops the service with a stable id and a hint."""

from __future__ import annotations

import hashlib
import os

from django.conf import settings
from django.core.checks import Error


def check_settings(app_configs=None, **kwargs) -> list[Error]:
    errors = [
        Error(
            f"{name}={value!r} is not an integer.",
            hint=f"Set {name} to a whole number or unset it to use the default.",
            id="imageservice.E001",
        )
        for name, value in settings.INVALID_SETTINGS.items()
    ]
    errors += _check_data_dir() + _check_hashing() + _check_limits()
    return errors


def _check_data_dir() -> list[Error]:
    if os.access(settings.DATA_DIR, os.W_OK):
        return []
    return [
        Error(
            f"DATA_DIR {settings.DATA_DIR} is not writable.",
            hint="Point DATA_DIR at a directory the service user can write.",
            id="imageservice.E002",
        )
    ]


def _check_hashing() -> list[Error]:
    if settings.HASHING_ALGORITHM in hashlib.algorithms_available:
        return []
    return [
        Error(
            f"HASHING_ALGORITHM={settings.HASHING_ALGORITHM!r} is not a hashlib algorithm.",
            hint="Clients verify downloads with hashlib.new(os_hash_algo); use e.g. sha512.",
            id="imageservice.E003",
        )
    ]


def _check_limits() -> list[Error]:
    names = ("LIMIT_PARAM_DEFAULT", "API_LIMIT_MAX", "IMAGE_PROPERTY_QUOTA", "IMAGE_TAG_QUOTA")
    return [
        Error(
            f"{name} must be positive (got {getattr(settings, name)}).",
            hint=f"Unset {name} to use Glance's default.",
            id="imageservice.E004",
        )
        for name in names
        if getattr(settings, name) <= 0
    ]
