"""Which import plugins are installed: entry points in the ``imageservice.import_plugins``
namespace, from our own ``pyproject.toml`` or any installed distribution."""

from __future__ import annotations

import logging

from stevedore import ExtensionManager

log = logging.getLogger(__name__)

NAMESPACE = "imageservice.import_plugins"


def installed_plugins() -> dict[str, str]:
    """Every installed plugin's name and one-line description, sorted by name.

    Entry points that fail to load are left out (with a warning in the log).
    """
    manager = ExtensionManager(
        NAMESPACE, invoke_on_load=False, on_load_failure_callback=_log_broken_plugin
    )
    return {
        extension.name: str(getattr(extension.plugin, "description", ""))
        for extension in sorted(manager.extensions, key=lambda extension: extension.name)
    }


def _log_broken_plugin(manager, entry_point, error: Exception) -> None:
    log.warning("import plugin %s could not be loaded: %s", entry_point.name, error)
