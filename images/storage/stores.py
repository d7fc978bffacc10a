"""The configured stores, by ``ENABLED_BACKENDS`` (Glance's ``enabled_backends``)."""

from __future__ import annotations

import functools
import importlib
import json
import os
from collections.abc import Collection
from pathlib import Path

from django.conf import settings

from images.storage.base import ImageStore, UnavailableStore
from images.storage.filesystem import FilesystemStore
from imageservice.errors import GlanceError


def multiple_stores() -> bool:
    """Multi-store mode, as Glance with ``enabled_backends``: stores are named to users."""
    return bool(settings.ENABLED_BACKENDS)


def locations_shown() -> bool:
    """Whether image bodies carry ``stores``, ``direct_url`` or ``locations`` at all."""
    return multiple_stores() or settings.SHOW_IMAGE_DIRECT_URL or settings.SHOW_MULTIPLE_LOCATIONS


# Store types by glance_store's names; each driver class reads its own options. Imported on
# first use: a worker with only file stores never loads boto3, swiftclient, keystoneauth1 or
# librados (about 20 MiB per process).
DRIVERS = {
    "file": "images.storage.filesystem.FilesystemStore",
    "swift": "images.storage.swift.SwiftStore",
    "s3": "images.storage.s3.S3Store",
    "rbd": "images.storage.ceph_rbd.RbdStore",
}


@functools.cache
def driver_for(store_type: str) -> type[ImageStore] | None:
    """The driver class of a store type, or None for a type no driver serves."""
    path = DRIVERS.get(store_type)
    if path is None:
        return None
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


# Options every store section may carry, whatever its type.
COMMON_OPTIONS = frozenset({"type", "store_description", "weight"})


def all_stores() -> dict[str, ImageStore]:
    """The configured stores by name, built once per configuration (drivers connect lazily)."""
    key = json.dumps(
        [settings.ENABLED_BACKENDS, settings.BACKEND_DESCRIPTIONS, str(settings.DATA_DIR)],
        sort_keys=True,
        default=str,
    )
    if key not in _built:
        _built.clear()
        _built[key] = _build_stores()
    return _built[key]


_built: dict[str, dict[str, ImageStore]] = {}


def forget_built_stores() -> None:
    """Drop the stores built so far: the next use builds them again."""
    _built.clear()


# A built store's client keeps connections open (boto3's pool, a Keystone session). A process
# forked after using it (django-q2 forks its job processes after the start-up checks reached
# every store) would share those sockets with its parent and siblings, and read their answers:
# two job processes were seen getting each other's S3 UploadId. Each process builds its own.
os.register_at_fork(after_in_child=forget_built_stores)


def _build_stores() -> dict[str, ImageStore]:
    if not multiple_stores():
        return {"file": FilesystemStore("file", Path(settings.DATA_DIR) / "images")}
    return {
        name: build_store(name, store_options(name, declared))
        for name, declared in settings.ENABLED_BACKENDS.items()
    }


def store_options(name: str, declared: str | dict[str, str]) -> dict[str, str]:
    """glance_store options of one store: a bare directory is a file store there."""
    if isinstance(declared, str):
        options = {"type": "file", "filesystem_store_datadir": declared}
    else:
        options = dict(declared)
    if name in settings.BACKEND_DESCRIPTIONS:
        options["store_description"] = settings.BACKEND_DESCRIPTIONS[name]
    return options


def build_store(name: str, options: dict[str, str]) -> ImageStore:
    """The store ``name`` of glance_store ``options`` (with their ``type``), or an
    :class:`UnavailableStore` saying why it cannot be built."""
    driver = driver_for(options["type"])
    if driver is None:
        return UnavailableStore(name, f"store type {options['type']!r} is not supported")
    lacking = driver.missing_requirements()
    if lacking is not None:
        return UnavailableStore(name, lacking)
    missing = sorted(driver.REQUIRED_OPTIONS - options.keys())
    if missing:
        return UnavailableStore(name, f"[{name}] needs {', '.join(missing)}")
    try:
        return driver.from_options(name, options)
    except ValueError as error:
        return UnavailableStore(name, f"[{name}] {error}")


def unknown_options() -> list[tuple[str, str]]:
    """``(store, option)`` pairs of options no driver reads: typos, or glance_store options we
    do not support."""
    found = []
    for name, declared in (settings.ENABLED_BACKENDS or {}).items():
        options = store_options(name, declared)
        driver = driver_for(options["type"])
        if driver is None:
            continue  # the whole store is refused already
        known = COMMON_OPTIONS | driver.OPTIONS
        found += [(name, option) for option in sorted(options.keys() - known)]
    return found


def default_store() -> ImageStore:
    stores = all_stores()
    return stores.get(settings.DEFAULT_BACKEND) or next(iter(stores.values()))


def store_named(name: str | None) -> ImageStore:
    """The store an upload asked for with ``X-Image-Meta-Store``, or the default one."""
    if not name or not multiple_stores():
        return default_store()
    store = all_stores().get(name)
    if store is None:
        raise GlanceError(400, f"Store for identifier {name} not found")
    return store


def missing_requirements() -> dict[str, str]:
    """Stores whose driver this process cannot run, with what to install."""
    found = {}
    for name, declared in (settings.ENABLED_BACKENDS or {}).items():
        driver = driver_for(store_options(name, declared)["type"])
        if driver is not None and (lacking := driver.missing_requirements()) is not None:
            found[name] = lacking
    return found


def prepare_stores(skip: Collection[str] = ()) -> list[str]:
    """Make every store (but those named in ``skip``) usable; return a description of each
    one that is not."""
    problems = (store.prepare() for name, store in all_stores().items() if name not in skip)
    return [problem for problem in problems if problem]
