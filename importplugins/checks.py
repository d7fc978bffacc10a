"""Start-up checks for the import plugin settings.

Glance discovers these mistakes only when an import runs (an unknown plugin is even skipped
silently, internals §3.0); here they stop the service at start with a stable id and a hint.

- ``imageservice.E020``: ``IMAGE_IMPORT_PLUGINS`` names a plugin no installed entry point provides.
- ``imageservice.E021``: ``INJECT_METADATA_PROPERTIES`` cannot be parsed.
- ``imageservice.E022``: ``IMAGE_CONVERSION_OUTPUT_FORMAT`` is not a format qemu-img may produce.
- ``imageservice.W023``: ``image_conversion`` is in the plugin chain in force but qemu-img is not
  on PATH. Only a warning: the service runs without qemu-img, and imports fail with the same
  advice until it is installed.
"""

from __future__ import annotations

import shutil

from django.conf import settings
from django.core.checks import Error, Warning
from django.db import DEFAULT_DB_ALIAS

from importplugins.conversion import OUTPUT_FORMATS, QEMU_IMG_PACKAGE
from importplugins.import_settings import current
from importplugins.inject_metadata import parse_inject_properties
from importplugins.registry import NAMESPACE, installed_plugins


def check_import_plugins(app_configs=None, **kwargs) -> list[Error]:
    errors = []
    installed = installed_plugins()
    for name in dict.fromkeys(settings.IMAGE_IMPORT_PLUGINS):
        if name not in installed:
            available = ", ".join(sorted(installed)) or "none"
            errors.append(
                Error(
                    f"IMAGE_IMPORT_PLUGINS names an unknown import plugin: {name}",
                    hint=(
                        f"Installed plugins (entry points in {NAMESPACE}): {available}. "
                        "Fix the name or install the distribution that provides it."
                    ),
                    id="imageservice.E020",
                )
            )
    try:
        parse_inject_properties(settings.INJECT_METADATA_PROPERTIES)
    except ValueError as error:
        errors.append(
            Error(
                f"INJECT_METADATA_PROPERTIES is invalid: {error}",
                hint='Use key:value pairs separated by commas, e.g. "k1:v1,k2:v2".',
                id="imageservice.E021",
            )
        )
    if settings.IMAGE_CONVERSION_OUTPUT_FORMAT not in OUTPUT_FORMATS:
        errors.append(
            Error(
                "IMAGE_CONVERSION_OUTPUT_FORMAT is "
                f"{settings.IMAGE_CONVERSION_OUTPUT_FORMAT!r}, which cannot be produced",
                hint=f"Use one of {', '.join(sorted(OUTPUT_FORMATS))}.",
                id="imageservice.E022",
            )
        )
    return errors


def check_conversion_tool(app_configs=None, databases=None, **kwargs) -> list[Warning]:
    """Warn when ``image_conversion`` is in the effective chain and qemu-img cannot be found.

    The chain in force may be the console's settings row
    (:func:`importplugins.import_settings.current`), so, like Django's own database checks, this
    runs only when the check run names the database:
    ``migrate`` (the first step of ``make run``) and ``manage.py check --database default``.
    """
    if DEFAULT_DB_ALIAS not in (databases or ()):
        return []
    values = current()
    if "image_conversion" not in values.import_plugins or shutil.which("qemu-img"):
        return []
    where = "IMAGE_IMPORT_PLUGINS" if values.source == "environment" else "the console's settings"
    return [
        Warning(
            f"The import plugin chain ({where}) includes image_conversion, but qemu-img is not "
            "on PATH: every import it converts will fail.",
            hint=f"Install qemu-img ({QEMU_IMG_PACKAGE}; `make system-deps` does) or remove "
            "image_conversion from the chain.",
            id="imageservice.W023",
        )
    ]
