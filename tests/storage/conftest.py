"""The stores under test, one per driver, and the real services behind them.

Every contract test runs once per driver with the same assertions. A driver's entry builds a
store from glance_store options, exactly as a configuration would, and says what the backend
holds for an image (``leftovers``): its data and anything a write left, so "nothing left
behind" is checked by listing the real directory, container or bucket.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from images.storage.base import ImageStore
from images.storage.stores import driver_for
from tests.storage.rbd_support import shared_pool
from tests.storage.s3_backend import Bucket, fresh_bucket_name, s3_service
from tests.storage.swift_support import fresh_container


@dataclass
class StoreUnderTest:
    store: ImageStore
    leftovers: Callable[[str], list[str]]


def file_store(request, tmp_path: Path) -> StoreUnderTest:
    directory = tmp_path / "file-store"
    store = driver_for("file").from_options(
        "files", {"type": "file", "filesystem_store_datadir": str(directory)}
    )

    def leftovers(image_id: str) -> list[str]:
        if not directory.exists():
            return []
        return sorted(entry.name for entry in directory.iterdir() if image_id in entry.name)

    return StoreUnderTest(store, leftovers)


def swift_store(request, tmp_path: Path) -> StoreUnderTest:
    # A fresh container per test; 5 MB and 1 MB thresholds, so the 12 MiB image has segments.
    container = fresh_container(request)
    return StoreUnderTest(container.store(), container.objects)


def s3_store(request, tmp_path: Path) -> StoreUnderTest:
    bucket = Bucket(s3_service(), fresh_bucket_name())
    request.addfinalizer(bucket.remove)
    return StoreUnderTest(bucket.store(), bucket.leftovers)


def rbd_store(request, tmp_path: Path) -> StoreUnderTest:
    # The shared pool; what the test leaves (its images, by their UUID names) is removed after.
    pool = shared_pool()
    before = set(pool.names())
    request.addfinalizer(lambda: pool.remove_new(before))
    return StoreUnderTest(pool.store(), pool.names)


# Driver name → builder of a store under test (taking the pytest request and a temp dir).
STORE_BUILDERS: dict[str, Callable[..., StoreUnderTest]] = {
    "file": file_store,
    "swift": swift_store,
    "s3": s3_store,
    "rbd": rbd_store,
}


@pytest.fixture(params=sorted(STORE_BUILDERS))
def under_test(request, tmp_path) -> Iterator[StoreUnderTest]:
    built = STORE_BUILDERS[request.param](request, tmp_path)
    assert built.store.prepare() is None
    yield built
