"""The configured stores, by ``ENABLED_BACKENDS`` (Glance's ``enabled_backends``)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from images.storage.base import ImageStore
from images.storage.filesystem import FilesystemStore
from imageservice.errors import GlanceError


def multiple_stores() -> bool:
    """Multi-store mode, as Glance with ``enabled_backends``: stores are named to users."""
    return bool(settings.ENABLED_BACKENDS)


def locations_shown() -> bool:
    """Whether image bodies carry ``stores``, ``direct_url`` or ``locations`` at all."""
    return multiple_stores() or settings.SHOW_IMAGE_DIRECT_URL or settings.SHOW_MULTIPLE_LOCATIONS


def all_stores() -> dict[str, ImageStore]:
    if not multiple_stores():
        return {"file": FilesystemStore("file", Path(settings.DATA_DIR) / "images")}
    return {
        name: FilesystemStore(name, Path(path), settings.BACKEND_DESCRIPTIONS.get(name, ""))
        for name, path in settings.ENABLED_BACKENDS.items()
    }


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


def prepare_stores() -> list[str]:
    """Make every store usable; return a description of each one that is not."""
    problems = (store.prepare() for store in all_stores().values())
    return [problem for problem in problems if problem]
