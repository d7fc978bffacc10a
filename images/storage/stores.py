"""Filesystem stores, configured by ``ENABLED_BACKENDS`` (Glance's ``enabled_backends``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from imageservice.errors import GlanceError


@dataclass(frozen=True)
class FilesystemStore:
    id: str
    directory: Path
    description: str = ""

    def path_for(self, image_id: str) -> Path:
        # Only ever an image UUID from our own database: nothing a caller sends reaches here.
        return self.directory / image_id

    def temporary_path_for(self, image_id: str) -> Path:
        return self.directory / f".{image_id}.partial"

    def url_for(self, image_id: str) -> str:
        return self.path_for(image_id).as_uri()

    def delete(self, image_id: str) -> None:
        for path in (self.path_for(image_id), self.temporary_path_for(image_id)):
            path.unlink(missing_ok=True)


def multiple_stores() -> bool:
    """Multi-store mode, as Glance with ``enabled_backends``: stores are named to users."""
    return bool(settings.ENABLED_BACKENDS)


def locations_shown() -> bool:
    """Whether image bodies carry ``stores``, ``direct_url`` or ``locations`` at all."""
    return multiple_stores() or settings.SHOW_IMAGE_DIRECT_URL or settings.SHOW_MULTIPLE_LOCATIONS


def all_stores() -> dict[str, FilesystemStore]:
    if not multiple_stores():
        return {"file": FilesystemStore("file", Path(settings.DATA_DIR) / "images")}
    return {
        name: FilesystemStore(name, Path(path), settings.BACKEND_DESCRIPTIONS.get(name, ""))
        for name, path in settings.ENABLED_BACKENDS.items()
    }


def default_store() -> FilesystemStore:
    stores = all_stores()
    return stores.get(settings.DEFAULT_BACKEND) or next(iter(stores.values()))


def store_named(name: str | None) -> FilesystemStore:
    """The store an upload asked for with ``X-Image-Meta-Store``, or the default one."""
    if not name or not multiple_stores():
        return default_store()
    store = all_stores().get(name)
    if store is None:
        raise GlanceError(400, f"Store for identifier {name} not found")
    return store


def ensure_store_directories() -> list[str]:
    """Create every store directory; return the ones that cannot be written."""
    unwritable = []
    for store in all_stores().values():
        store.directory.mkdir(parents=True, exist_ok=True)
        if not os.access(store.directory, os.W_OK):
            unwritable.append(f"{store.id}: {store.directory}")
    return unwritable
