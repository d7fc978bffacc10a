"""The stores under test, one per driver, and the real services behind them.

Every contract test runs once per driver with the same assertions. A driver's entry builds a
store from glance_store options, exactly as a configuration would, and says what the backend
holds for an image (``leftovers``): its data and anything a write left, so "nothing left
behind" is checked by listing the real directory, container or bucket.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings

from images.storage.base import ImageStore
from images.storage.stores import DRIVERS
from tests.storage.s3_backend import Bucket, fresh_bucket_name, s3_service

SWIFT_AIO = Path(settings.BASE_DIR) / "scripts" / "swift-aio.sh"


@dataclass
class StoreUnderTest:
    store: ImageStore
    leftovers: Callable[[str], list[str]]


@pytest.fixture(scope="session")
def swift_service() -> dict[str, str]:
    """A real Swift with its S3 API on loopback (``scripts/swift-aio.sh``), started (and on a
    fresh machine installed) on first use and left running for later runs."""
    started = subprocess.run([str(SWIFT_AIO), "start"], capture_output=True, text=True, timeout=600)
    assert started.returncode == 0, f"swift-aio.sh start failed:\n{started.stdout}{started.stderr}"
    facts = subprocess.run(
        [str(SWIFT_AIO), "status", "env"], capture_output=True, text=True, timeout=60, check=True
    )
    return dict(line.split("=", 1) for line in facts.stdout.splitlines() if "=" in line)


def file_store(request, tmp_path: Path) -> StoreUnderTest:
    directory = tmp_path / "file-store"
    store = DRIVERS["file"].from_options(
        "files", {"type": "file", "filesystem_store_datadir": str(directory)}
    )

    def leftovers(image_id: str) -> list[str]:
        if not directory.exists():
            return []
        return sorted(entry.name for entry in directory.iterdir() if image_id in entry.name)

    return StoreUnderTest(store, leftovers)


def s3_store(request, tmp_path: Path) -> StoreUnderTest:
    bucket = Bucket(s3_service(), fresh_bucket_name())
    request.addfinalizer(bucket.remove)
    return StoreUnderTest(bucket.store(), bucket.leftovers)


# Driver name → builder of a store under test (taking the pytest request and a temp dir).
STORE_BUILDERS: dict[str, Callable[..., StoreUnderTest]] = {"file": file_store, "s3": s3_store}


@pytest.fixture(params=sorted(STORE_BUILDERS))
def under_test(request, tmp_path) -> Iterator[StoreUnderTest]:
    built = STORE_BUILDERS[request.param](request, tmp_path)
    assert built.store.prepare() is None
    yield built
