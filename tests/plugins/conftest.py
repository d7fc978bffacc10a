"""An ImportContext factory: the data staged on disk, a scratch directory, today's settings."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from importplugins.base import ImportContext
from importplugins.chain import import_settings_snapshot
from tests.conftest import PERSONAS

MEMBER_ROLES = frozenset(PERSONAS["member"][1])
ADMIN_ROLES = frozenset(PERSONAS["admin"][1])


@pytest.fixture
def make_context(tmp_path):
    """Factory: a glance-direct import by the member persona of ``data`` (bytes or a file)."""
    staging = tmp_path / "staging"
    work_dir = tmp_path / "work"
    staging.mkdir()
    work_dir.mkdir()

    def make(data: bytes | Path = b"", *, settings: dict | None = None, **fields) -> ImportContext:
        data_path = staging / "image-1"
        if isinstance(data, Path):
            shutil.copyfile(data, data_path)
        else:
            data_path.write_bytes(data)
        fields.setdefault("image_id", "image-1")
        fields.setdefault("method", "glance-direct")
        fields.setdefault("disk_format", "raw")
        fields.setdefault("container_format", "bare")
        fields.setdefault("properties", {})
        fields.setdefault("roles", MEMBER_ROLES)
        return ImportContext(
            data_path=data_path,
            work_dir=work_dir,
            settings={**import_settings_snapshot(), **(settings or {})},
            **fields,
        )

    return make


def run(*command: str | Path) -> str:
    return subprocess.run(
        [str(part) for part in command], check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture(autouse=True)
def _database(db):
    """Import settings are read from the database (importplugins.import_settings.current)."""
