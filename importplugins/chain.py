"""Loading, ordering and running the import plugin chain.

Plugins are entry points in the ``imageservice.import_plugins`` namespace (ours are declared in
``pyproject.toml``; any installed distribution may add more). ``IMAGE_IMPORT_PLUGINS`` names the
ones to run, in order. Unlike Glance, where stevedore skips an unknown name with a log line and a
typo silently disables a plugin, an unknown name fails the start-up check
(:mod:`importplugins.checks`) and, should it get that far, the import.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from django.conf import settings
from stevedore import NamedExtensionManager

from importplugins.base import ImportContext, ImportPlugin, ImportPluginError
from importplugins.import_settings import current
from importplugins.inject_metadata import parse_inject_properties
from importplugins.registry import NAMESPACE

log = logging.getLogger(__name__)

# Glance runs no operator plugin on copy-image: the data is already active elsewhere.
CHAINLESS_METHODS = frozenset({"copy-image"})


def import_settings_snapshot() -> dict:
    """The plugin settings as they are now, to store with an accepted import (JSON-serialisable).

    The values come from :func:`importplugins.import_settings.current`: the console's row, else the
    environment.

    The import runs later, perhaps on another worker; it reads this snapshot (as
    ``ImportContext.settings``), so changing the settings never alters an accepted import.
    Raises a permanent :class:`ImportPluginError` if ``INJECT_METADATA_PROPERTIES`` is malformed
    (the start-up check reports that earlier).
    """
    values = current()
    try:
        inject = parse_inject_properties(values.inject_metadata_properties)
    except ValueError as error:
        raise ImportPluginError(
            f"INJECT_METADATA_PROPERTIES is invalid: {error}", permanent=True
        ) from error
    return {
        "import_plugins": list(values.import_plugins),
        "inject_metadata_properties": inject,
        "ignore_user_roles": list(values.ignore_user_roles),
        "image_conversion_output_format": values.image_conversion_output_format,
        "image_conversion_timeout": getattr(settings, "IMAGE_CONVERSION_TIMEOUT", 3600),
        "image_size_cap": settings.IMAGE_SIZE_CAP,
    }


def load_chain(names: Sequence[str]) -> list[ImportPlugin]:
    """Instances of the named plugins in the given order (a name listed twice runs twice).

    Raises a permanent :class:`ImportPluginError` for a name no installed entry point provides,
    a plugin that fails to load, or an entry point that is not an :class:`ImportPlugin`.
    """
    if not names:
        return []
    manager = NamedExtensionManager(
        NAMESPACE,
        names=list(names),
        invoke_on_load=True,
        name_order=True,
        on_load_failure_callback=_refuse_broken_plugin,
        on_missing_entrypoints_callback=lambda missing: _refuse_unknown(names, missing),
    )
    plugins = [extension.obj for extension in manager.extensions]
    for name, plugin in zip(names, plugins, strict=True):
        if not isinstance(plugin, ImportPlugin):
            raise ImportPluginError(
                f"Import plugin {name} does not implement importplugins.base.ImportPlugin",
                permanent=True,
            )
    return plugins


def chain_reads_data(names: Sequence[str]) -> bool:
    """Whether any plugin of the chain ``names`` opens the image data (``reads_data``)."""
    return any(plugin.reads_data for plugin in load_chain(names))


def run_chain(context: ImportContext) -> None:
    """Run the chain named in ``context.settings`` over ``context``, in order.

    Nothing runs for copy-image. A plugin's :class:`ImportPluginError` propagates unchanged; any
    other exception is wrapped into a non-permanent one (the cause is chained). Either way the
    error's ``plugin`` names the plugin that failed.
    """
    if context.method in CHAINLESS_METHODS:
        return
    names = list(context.settings["import_plugins"])
    for name, plugin in zip(names, load_chain(names), strict=True):
        log.debug("running import plugin %s for image %s", name, context.image_id)
        try:
            plugin.run(context)
        except ImportPluginError as error:
            error.plugin = error.plugin or name
            raise
        except Exception as error:
            wrapped = ImportPluginError(str(error))
            wrapped.plugin = name
            raise wrapped from error


def _refuse_unknown(names: Sequence[str], missing: Iterable[str]) -> None:
    missing = set(missing)
    first = next(name for name in names if name in missing)
    raise ImportPluginError(f"Unknown import plugin: {first}", permanent=True)


def _refuse_broken_plugin(manager, entry_point, error: Exception) -> None:
    raise ImportPluginError(
        f"Import plugin {entry_point.name} could not be loaded: {error}", permanent=True
    ) from error
