"""The import plugin contract: what a plugin receives, what it may change, what it raises.

Operators enable plugins by name in ``IMAGE_IMPORT_PLUGINS``; each name is an entry point in the
``imageservice.import_plugins`` namespace (see :mod:`importplugins.chain`) that resolves to an
:class:`ImportPlugin` subclass. The class is instantiated without arguments, so a plugin keeps no
per-import state on ``self``: everything an import needs travels in the :class:`ImportContext`.

When plugins run: after the data of a ``glance-direct`` or ``web-download`` import is on local disk
and before anything is written to a store, one after another in the configured order. As in
Glance, :func:`importplugins.chain.run_chain` runs nothing for ``copy-image`` (the data is already
active in another store; changing it would make the stores disagree), and the built-ins check
``context.method`` themselves as well, so calling one directly on a copy changes nothing.

What a plugin may change, and nothing else:

- ``properties``: add or overwrite custom properties; the import sets them on the image.
- the data: write a new file inside ``work_dir`` and hand it over with
  :meth:`ImportContext.replace_data`, which also marks the size and hashes as stale.
- ``disk_format``, ``container_format`` and ``virtual_size`` when the new data warrants it.

A plugin never writes to the database or to a store; the import applies the context afterwards.

How a plugin fails: it raises :class:`ImportPluginError`. Any other exception is wrapped into a
non-permanent one by :func:`importplugins.chain.run_chain`. A failing plugin fails the import;
there are no optional plugins. What the import runner (:mod:`tasks.runner`) then does, whatever
the error: the task ends ``failure``; the image goes back to where the owner can retry
(``glance-direct``: ``uploading`` with the staged data kept; ``web-download``: ``queued``, the
fetched bytes removed); the task message is ``Import plugin failed: <message>`` followed by the
advice that ``permanent`` selects (see :class:`ImportPluginError`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar


class ImportPluginError(Exception):
    """An import plugin refused or could not finish the import.

    ``permanent=True`` says that retrying the same import with the same data and configuration
    cannot succeed (bad data, an unknown plugin, a missing tool): the task message says a retry
    will fail again until that cause is fixed. ``permanent=False`` is for
    conditions that may clear up on their own (a timeout, a full disk): the message says a
    retry may succeed. The image is left retryable either way.
    """

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        # Set by the chain to the plugin that raised, so the task message can name it.
        self.plugin: str | None = None


@dataclass
class ImportContext:
    """Everything one import hands to the plugin chain, and everything the chain may change.

    ``data_path`` is the working copy of the image data. A plugin that rewrites the data writes
    the new file inside ``work_dir`` (same filesystem, so the import may rename it into place)
    and calls :meth:`replace_data`; it never edits ``data_path`` in place.

    ``settings`` is the snapshot taken by :func:`importplugins.chain.import_settings_snapshot`
    when the import was accepted, so an import behaves as configured at that moment even if it
    runs later on another worker. Plugins read their options from it, never from
    ``django.conf.settings``.

    ``roles`` are the roles of the user who asked for the import (for role-dependent plugins
    such as ``inject_image_metadata``).
    """

    image_id: str
    method: str  # "glance-direct" | "web-download" | "copy-image"
    data_path: Path
    work_dir: Path
    disk_format: str | None
    container_format: str | None
    properties: dict[str, str]
    roles: frozenset[str]
    settings: Mapping[str, object]
    data_changed: bool = False
    virtual_size: int | None = None

    def replace_data(self, new_path: Path) -> None:
        """Make ``new_path`` (a file inside ``work_dir``) the image data from now on.

        Marks ``data_changed`` so the import recomputes size and hashes. The previous file is
        deleted when it lies inside ``work_dir`` (an earlier plugin's output); a file outside
        it, such as the staged upload, belongs to the import, which cleans it up itself.
        """
        previous = self.data_path
        self.data_path = new_path
        self.data_changed = True
        if previous != new_path and previous.parent.resolve() == self.work_dir.resolve():
            previous.unlink(missing_ok=True)


class ImportPlugin(ABC):
    """One step of the import plugin chain.

    Subclasses set ``name`` (the entry point name operators list in ``IMAGE_IMPORT_PLUGINS``)
    and ``description`` (one line shown by the start-up check's hint), and implement
    :meth:`run`. A plugin that never opens ``context.data_path`` (it works on metadata only)
    sets ``reads_data = False``: with the staging area in an object store, an import whose
    chain reads no data needs no local copy of it (``data_path`` then names no file).
    """

    name: ClassVar[str]
    description: ClassVar[str]
    reads_data: ClassVar[bool] = True

    @abstractmethod
    def run(self, context: ImportContext) -> None:
        """Inspect and change ``context`` in place, or raise :class:`ImportPluginError`.

        Must be safe to run again on a retried import: read inputs from the context, write new
        files only inside ``context.work_dir``.
        """
