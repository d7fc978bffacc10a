"""The store driver contract (images/storage/base.py), the same assertions for every driver."""

from __future__ import annotations

import hashlib
import io
import os
import uuid

import pytest

from images.storage.base import ByteRange, new_attempt
from images.storage.writer import write_image, write_plan
from imageservice.errors import GlanceError

MiB = 1024 * 1024
# Over the small segment and part thresholds the drivers' test configurations set (1 and 5 MiB).
LARGE = 12 * MiB + 12345


def image_id() -> str:
    return str(uuid.uuid4())


def write(store, image: str, data: bytes, *, chunk: int = MiB, attempt: str | None = None):
    sink = store.open_write(image, attempt or new_attempt())
    for start in range(0, len(data), chunk):
        sink.write(data[start : start + chunk])
    return sink


def read_all(store, image: str, byte_range: ByteRange | None = None) -> bytes:
    return b"".join(store.read(image, byte_range))


@pytest.mark.parametrize("size", [0, 1, 3 * MiB + 7, LARGE])
def test_committed_write_reads_back_byte_exact(under_test, size):
    store, image, data = under_test.store, image_id(), os.urandom(size)

    write(store, image, data).commit()

    assert store.has_data(image)
    assert read_all(store, image) == data
    assert under_test.leftovers(image) != []


def test_unknown_size_stream_through_the_pipeline_hashes_what_was_stored(under_test):
    store, image, data = under_test.store, image_id(), os.urandom(LARGE)

    pending = write_image(store, image, new_attempt(), io.BytesIO(data), write_plan())
    pending.sink.commit()

    assert pending.data.size == len(data)
    assert pending.data.checksum == hashlib.md5(data).hexdigest()
    assert pending.data.os_hash_value == hashlib.sha512(data).hexdigest()
    assert read_all(store, image) == data


@pytest.mark.parametrize(
    ("start", "end"),
    [(0, 0), (MiB - 1, MiB), (5 * MiB - 3, 5 * MiB + 3), (LARGE - 10, LARGE - 1), (0, LARGE - 1)],
)
def test_ranged_read_crosses_segment_boundaries(under_test, start, end):
    store, image, data = under_test.store, image_id(), os.urandom(LARGE)
    write(store, image, data).commit()

    assert read_all(store, image, ByteRange(start, end)) == data[start : end + 1]


def test_abort_leaves_nothing_behind(under_test):
    store, image = under_test.store, image_id()
    sink = write(store, image, os.urandom(LARGE))

    sink.abort()

    assert not store.has_data(image)
    assert under_test.leftovers(image) == []


def test_delete_removes_the_data_and_every_part_of_it(under_test):
    store, image = under_test.store, image_id()
    write(store, image, os.urandom(LARGE)).commit()
    unfinished = write(store, image, os.urandom(2 * MiB))

    store.delete(image)

    assert not store.has_data(image)
    assert under_test.leftovers(image) == []
    unfinished.abort()  # an attempt whose parts were already removed aborts quietly


def test_delete_of_an_image_without_data_is_quiet(under_test):
    under_test.store.delete(image_id())


def test_two_attempts_write_apart_and_an_abort_keeps_the_other_ones_data(under_test):
    store, image = under_test.store, image_id()
    first, second = os.urandom(3 * MiB), os.urandom(LARGE)
    stalled = write(store, image, first)
    winner = write(store, image, second)

    winner.commit()
    stalled.abort()

    assert read_all(store, image) == second


def test_read_of_missing_data_is_a_404_before_any_byte(under_test):
    with pytest.raises(GlanceError) as missing:
        under_test.store.read(image_id())

    assert missing.value.status_code == 404


def test_placed_file_becomes_the_data_and_the_file_stays(under_test, tmp_path):
    store, image, data = under_test.store, image_id(), os.urandom(LARGE)
    staged = tmp_path / "staged"
    staged.write_bytes(data)

    store.place_file(image, staged, new_attempt()).commit()

    assert read_all(store, image) == data
    assert staged.read_bytes() == data


def test_placed_file_aborted_leaves_nothing(under_test, tmp_path):
    store, image = under_test.store, image_id()
    staged = tmp_path / "staged"
    staged.write_bytes(os.urandom(2 * MiB))

    store.place_file(image, staged, new_attempt()).abort()

    assert under_test.leftovers(image) == []
    assert staged.exists()


def test_sweep_removes_what_dead_writes_left_and_nothing_else(under_test):
    store = under_test.store
    kept, dead_image, live_image = image_id(), image_id(), image_id()
    data, live_data = os.urandom(LARGE), os.urandom(2 * MiB)
    write(store, kept, data).commit()
    write(store, dead_image, os.urandom(2 * MiB))
    live_write = write(store, live_image, live_data)

    removed = store.sweep(lambda image, attempt: image == live_image)

    assert removed
    assert under_test.leftovers(dead_image) == []
    assert read_all(store, kept) == data
    live_write.commit()
    assert read_all(store, live_image) == live_data


def test_listing_shows_committed_data_only(under_test):
    store = under_test.store
    committed, unfinished = image_id(), image_id()
    write(store, committed, os.urandom(2 * MiB + 7)).commit()
    pending = store.open_write(unfinished, new_attempt())
    pending.write(os.urandom(MiB))

    listed = store.listing()

    pending.abort()
    assert [(data.image_id, data.size) for data in listed] == [(committed, 2 * MiB + 7)]
    assert listed[0].modified.tzinfo is not None
