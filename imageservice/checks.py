"""Start-up checks: bad configuration stops the service with a stable id and a hint."""

from __future__ import annotations

import hashlib
import os

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning

from images.storage.staging import ensure_staging_root, unknown_staging_options
from images.storage.stores import missing_requirements, prepare_stores, unknown_options
from imageservice.glance_conf import STAGING_SECTION


def check_settings(app_configs=None, **kwargs) -> list[CheckMessage]:
    errors = [
        Error(
            f"{name}: {value!r} is not a valid value.",
            hint=f"See docs/configuration.md for {name}'s format, or unset it for the default.",
            id="imageservice.E001",
        )
        for name, value in settings.INVALID_SETTINGS.items()
    ]
    errors += _check_data_dir() + _check_hashing() + _check_limits() + _check_glance_conf()
    errors += _check_login_limits() + _check_keystone() + _check_web_download_limits()
    errors += _check_stores() + _check_staging()
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
    return _not_positive(names, "imageservice.E004", "Unset {name} to use Glance's default.")


def _not_positive(names: tuple[str, ...], error_id: str, hint: str) -> list[Error]:
    return [
        Error(
            f"{name} must be positive (got {getattr(settings, name)}).",
            hint=hint.format(name=name),
            id=error_id,
        )
        for name in names
        if getattr(settings, name) <= 0
    ]


def _check_web_download_limits() -> list[CheckMessage]:
    positive = ("WEB_DOWNLOAD_DEADLINE", "WEB_DOWNLOAD_RATE_WINDOW", "WEB_DOWNLOAD_WORKERS")
    problems: list[CheckMessage] = list(
        _not_positive(
            positive, "imageservice.E060", "Unset {name} for its default (docs/security.md)."
        )
    )
    deadline, job_timeout = settings.WEB_DOWNLOAD_DEADLINE, settings.Q_CLUSTER["timeout"]
    if deadline >= job_timeout:
        problems.append(
            Warning(
                f"WEB_DOWNLOAD_DEADLINE ({deadline} s) is not below the job timeout Q_TIMEOUT "
                f"({job_timeout} s).",
                hint="The queue would kill a slow download before its deadline ends it cleanly.",
                id="imageservice.W061",
            )
        )
    slots, workers = settings.WEB_DOWNLOAD_WORKERS, settings.Q_CLUSTER["workers"]
    if slots >= workers > 1:
        problems.append(
            Warning(
                f"WEB_DOWNLOAD_WORKERS ({slots}) leaves none of the {workers} job workers free "
                "of web-downloads.",
                hint="Keep it below Q_WORKERS so glance-direct and copy-image never wait.",
                id="imageservice.W062",
            )
        )
    return problems


def _check_login_limits() -> list[Error]:
    minimums = {
        "TOKEN_EXPIRATION": 1,
        "LOCKOUT_DURATION": 1,
        "LOCKOUT_FAILURE_ATTEMPTS": 0,
        "LOGIN_FAILURES_PER_ADDRESS": 0,
    }
    return [
        Error(
            f"{name} must be at least {minimum} (got {getattr(settings, name)}).",
            hint=f"Unset {name} for its default; docs/identity.md describes it.",
            id="imageservice.E030",
        )
        for name, minimum in minimums.items()
        if getattr(settings, name) < minimum
    ]


def _check_glance_conf() -> list[Error]:
    conf = settings.GLANCE_CONF
    errors = []
    if conf.problem:
        errors.append(
            Error(
                f"GLANCE_API_CONF {conf.path} cannot be read: {conf.problem}",
                hint="Fix the file, or unset GLANCE_API_CONF to configure through the environment.",
                id="imageservice.E005",
            )
        )
    errors += [
        Error(
            f"GLANCE_API_CONF {conf.path}: {problem}",
            hint="Every store of enabled_backends needs a section of its own with its options.",
            id="imageservice.E009",
        )
        for problem in settings.STORES_FROM_FILE.problems
    ]
    return errors


def _check_stores() -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    if settings.DEFAULT_BACKEND and settings.DEFAULT_BACKEND not in settings.ENABLED_BACKENDS:
        messages.append(
            Error(
                f"DEFAULT_BACKEND={settings.DEFAULT_BACKEND!r} is not in ENABLED_BACKENDS.",
                hint="Name one of the stores listed in ENABLED_BACKENDS.",
                id="imageservice.E006",
            )
        )
    messages += [
        Warning(
            f"[{store}] {option}: unknown option, ignored.",
            hint="Check the spelling; docs/storage.md lists the options each store type reads.",
            id="imageservice.W007",
        )
        for store, option in [
            *unknown_options(),
            *((STAGING_SECTION, option) for option in unknown_staging_options()),
        ]
    ]
    lacking = missing_requirements()
    messages += [
        Error(
            f"Store {store} cannot be used: {problem}",
            hint="Install what is named, then start again (docs/storage.md).",
            id="imageservice.E011",
        )
        for store, problem in lacking.items()
    ]
    messages += [
        Error(
            f"Store cannot be used: {problem}",
            hint="Fix the store's options (`manage.py check_stores` tries each store again).",
            id="imageservice.E007",
        )
        for problem in prepare_stores(skip=lacking)
    ]
    return messages


def _check_staging() -> list[Error]:
    problem = ensure_staging_root()
    if problem is None:
        return []
    if settings.STAGING_STORE_TYPE != "file":
        return [
            Error(
                f"The staging store ([os_glance_staging_store]) cannot be used: {problem}",
                hint="Fix its store_type and options (docs/storage.md, Staging area).",
                id="imageservice.E008",
            )
        ]
    return [
        Error(
            f"NODE_STAGING_URI cannot be used: {problem}",
            hint="Point NODE_STAGING_URI at a writable file:// directory (shared between nodes).",
            id="imageservice.E008",
        )
    ]


def _check_keystone() -> list[Error]:
    if settings.AUTH_STRATEGY not in {"local", "keystone"}:
        return [
            Error(
                f"AUTH_STRATEGY={settings.AUTH_STRATEGY!r} is neither local nor keystone.",
                hint="Unset it for local tokens, or set keystone (docs/identity.md).",
                id="imageservice.E040",
            )
        ]
    if settings.AUTH_STRATEGY != "keystone":
        return []
    # Imported only in Keystone mode: keystonemiddleware costs ~25 MiB and 0.2 s per process.
    from imageservice.identity.keystone_wsgi import authtoken_problems  # noqa: PLC0415

    return [
        Error(
            f"[keystone_authtoken]: {problem}",
            hint=(
                "Keystone mode reads [keystone_authtoken] of GLANCE_API_CONF and the "
                "KEYSTONE_AUTHTOKEN_<OPTION> variables; see docs/identity.md."
            ),
            id="imageservice.E041",
        )
        for problem in authtoken_problems(settings.KEYSTONE_AUTHTOKEN)
    ]
