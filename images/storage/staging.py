"""The staging area (``NODE_STAGING_URI``): where ``PUT /stage`` and web-download put data.

It may be a filesystem shared by several API nodes and workers. A staged file's path is built
only from the image's UUID, and checked to stay under the root, so nothing a caller sends can
point outside it.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from urllib.parse import urlparse

from django.conf import settings


def staging_root() -> Path:
    parsed = urlparse(settings.NODE_STAGING_URI)
    if parsed.scheme != "file" or not parsed.path:
        raise ValueError(f"NODE_STAGING_URI must be a file:// URI, got {settings.NODE_STAGING_URI}")
    return Path(parsed.path)


def staging_path_for(image_id: str) -> Path:
    canonical = str(uuid.UUID(image_id))  # refuses anything that is not a UUID
    root = staging_root().resolve()
    path = (root / canonical).resolve()
    if path.parent != root:
        raise ValueError(f"Staging path for {image_id} escapes the staging root")
    return path


def temporary_staging_path_for(image_id: str) -> Path:
    path = staging_path_for(image_id)
    return path.with_name(f".{path.name}.partial")


def ensure_staging_root() -> str | None:
    """Create the root; return a problem description when it cannot be used."""
    try:
        root = staging_root()
        root.mkdir(parents=True, exist_ok=True)
    except (ValueError, OSError) as error:
        return str(error)
    if not os.access(root, os.W_OK):
        return f"{root} is not writable"
    return None


def remove_staged(image_id: str) -> int:
    """Delete the staged and partial files of an image; return the bytes freed."""
    freed = 0
    for path in (staging_path_for(image_id), temporary_staging_path_for(image_id)):
        try:
            freed += path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            continue
    return freed
