"""Files at rest that only the service user may read: ``DATA_DIR`` (0700), the SQLite database
and its journals, and the installation's generated ``SECRET_KEY`` (0600).

Imported by ``settings.py`` before Django is configured, so nothing here may touch
``django.conf.settings``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

PRIVATE_DIRECTORY = 0o700
PRIVATE_FILE = 0o600
SECRET_KEY_FILE = "secret_key"
# SQLite's companions of a database file: they hold recent writes in clear.
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def private_directory(path: Path) -> Path:
    """Create ``path`` readable by its owner only, and take group and other bits off it if it
    already existed with them (a directory the service created before this rule)."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIRECTORY)
    tighten(path, PRIVATE_DIRECTORY)
    return path


def tighten(path: Path, mode: int) -> None:
    """Drop the permission bits of ``path`` outside ``mode``; a path we may not change (not
    ours, gone) is left as it is, for the start-up checks to report what matters."""
    with contextlib.suppress(OSError):
        current = stat.S_IMODE(path.stat().st_mode)
        if current & ~mode:
            path.chmod(current & mode)


def private_sqlite_database(path: Path) -> None:
    """Create the database file 0600 before SQLite does (SQLite gives its ``-wal`` and
    ``-shm`` files the database file's mode), and tighten existing ones."""
    # OSError: it exists, or it cannot be created here (SQLite and the checks will say why).
    with contextlib.suppress(OSError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    for name in (path.name, *(path.name + suffix for suffix in SQLITE_COMPANIONS)):
        tighten(path.with_name(name), PRIVATE_FILE)


def installation_secret(data_dir: Path) -> str:
    """The key generated once for this installation and kept in ``DATA_DIR/secret_key`` (0600).

    Every process of a node reads the same file; the first to start writes it, atomically (a
    hard link of a complete temporary file), so a process starting at the same moment reads
    the winner's key, never a half-written one. A ``DATA_DIR`` that cannot be written gets a
    key for this process only (the start-up check E002 reports the directory): never a
    published default.
    """
    path = data_dir / SECRET_KEY_FILE
    try:
        return _read_secret(path)
    except FileNotFoundError:
        pass
    except OSError:
        return secrets.token_urlsafe(50)
    temporary = data_dir / f".{SECRET_KEY_FILE}.{secrets.token_hex(8)}"
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
        with os.fdopen(descriptor, "w") as output:
            output.write(secrets.token_urlsafe(50) + "\n")
            output.flush()
            os.fsync(output.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
        return _read_secret(path)
    except OSError:
        return secrets.token_urlsafe(50)
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink()


def _read_secret(path: Path) -> str:
    tighten(path, PRIVATE_FILE)
    value = path.read_text(encoding="utf-8").strip()
    if not value:
        raise OSError(f"{path} is empty")
    return value
