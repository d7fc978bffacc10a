"""The s3 store against the real Swift's S3 API: what the contract does not say (tests/storage/
test_contract.py runs the contract for it). The Swift is the s3 tests' own
(tests/storage/s3_backend.py), so stopping its proxy here disturbs no other test."""

from __future__ import annotations

import hashlib
import io
import os
import time
import uuid

import pytest

from images.storage.base import UnavailableStore, new_attempt
from images.storage.s3 import S3Store
from images.storage.stores import all_stores, prepare_stores
from images.storage.writer import write_image, write_plan
from imageservice.errors import GlanceError
from tests.storage.s3_backend import Bucket, fresh_bucket_name, s3_options, s3_service, swift_aio

MiB = 1024 * 1024
LARGE = 12 * MiB + 12345
# Facts of a store nobody listens for (port 9, discard): options are checked without a server.
FAKE_SERVICE = {
    "S3_ENDPOINT": "http://127.0.0.1:9",
    "S3_ACCESS_KEY": "test:tester",
    "S3_SECRET_KEY": "testing",
    "S3_REGION": "us-east-1",
}


def image_id() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def s3_swift() -> dict[str, str]:
    """The s3 tests' own Swift (tests/storage/s3_backend.py)."""
    return s3_service()


@pytest.fixture
def bucket(s3_swift):
    made = Bucket(s3_swift, fresh_bucket_name())
    yield made
    made.remove()


@pytest.fixture
def store(bucket) -> S3Store:
    made = bucket.store()
    assert made.prepare() is None
    return made


def write(store, image: str, data: bytes, *, chunk: int = MiB):
    sink = store.open_write(image, new_attempt())
    for start in range(0, len(data), chunk):
        sink.write(data[start : start + chunk])
    return sink


# --- options ---------------------------------------------------------------------------------


def test_options_defaults_are_glance_stores():
    required = {"s3_store_host", "s3_store_access_key", "s3_store_secret_key", "s3_store_bucket"}
    options = s3_options(FAKE_SERVICE, "images")

    store = S3Store.from_options("objects", {name: options[name] for name in required})

    assert store.properties() == {
        "s3_store_large_object_size": 100 * MiB,
        "s3_store_large_object_chunk_size": 10 * MiB,
        "s3_store_thread_pools": 10,
    }
    assert (store.region, store.url_format, store.create_bucket_on_put) == (
        "us-east-1",
        "auto",
        False,
    )


@pytest.mark.parametrize(
    ("chunk_size", "thread_pools", "uploading"),
    [("10", "10", 1), ("5", "10", 3), ("6", "10", 2), ("5", "2", 2), ("100", "10", 1)],
)
def test_part_buffers_of_a_write_stay_within_the_bound(chunk_size, thread_pools, uploading):
    store = S3Store.from_options(
        "objects",
        s3_options(
            FAKE_SERVICE,
            "images",
            s3_store_large_object_chunk_size=chunk_size,
            s3_store_thread_pools=thread_pools,
        ),
    )

    # The one filling and the ones uploading: 20 MiB, or two parts when they are larger.
    assert store.parts_in_flight == uploading


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        (
            "s3_store_large_object_chunk_size",
            "4",
            "s3_store_large_object_chunk_size must be at least 5, got 4",
        ),
        (
            "s3_store_large_object_size",
            "big",
            "s3_store_large_object_size must be an integer, got 'big'",
        ),
        ("s3_store_thread_pools", "0", "s3_store_thread_pools must be at least 1, got 0"),
        (
            "s3_store_bucket_url_format",
            "dns",
            "s3_store_bucket_url_format must be one of auto, path, virtual, got 'dns'",
        ),
        (
            "s3_store_create_bucket_on_put",
            "maybe",
            "s3_store_create_bucket_on_put must be true or false, got 'maybe'",
        ),
        (
            "s3_store_host",
            "ftp://example.com",
            "s3_store_host must be http:// or https://, got 'ftp://example.com'",
        ),
    ],
)
def test_bad_option_makes_the_store_unavailable_saying_why(settings, option, value, message):
    settings.ENABLED_BACKENDS = {"cheap": s3_options(FAKE_SERVICE, "images", **{option: value})}

    store = all_stores()["cheap"]

    assert isinstance(store, UnavailableStore)
    assert store.reason == f"[cheap] {message}"


def test_missing_required_option_is_named(settings):
    options = s3_options(FAKE_SERVICE, "images")
    del options["s3_store_bucket"]
    settings.ENABLED_BACKENDS = {"cheap": options}

    assert all_stores()["cheap"].reason == "[cheap] needs s3_store_bucket"


def test_virtual_addressing_needs_a_dns_bucket_name():
    with pytest.raises(ValueError, match="bucket 'glance_images' cannot be a host name"):
        S3Store.from_options(
            "objects",
            s3_options(FAKE_SERVICE, "glance_images", s3_store_bucket_url_format="virtual"),
        )


# --- location and addressing -----------------------------------------------------------------


def test_location_is_glance_stores_without_credentials(store, bucket, s3_swift):
    image = image_id()

    url = store.url_for(image)

    host = s3_swift["S3_ENDPOINT"].removeprefix("http://")
    assert url == f"s3://{host}/{bucket.name}/{image}"
    assert "tester" not in url
    assert "testing" not in url
    assert "testing" not in repr(store)


@pytest.mark.parametrize(
    ("host", "endpoint", "location"),
    [
        ("https://s3.example.com/", "https://s3.example.com", "s3+https://s3.example.com/images/i"),
        (
            "http://s3.example.com:7480",
            "http://s3.example.com:7480",
            "s3://s3.example.com:7480/images/i",
        ),
        ("s3.example.com", "http://s3.example.com", "s3://s3.example.com/images/i"),
    ],
)
def test_host_with_or_without_scheme(host, endpoint, location):
    store = S3Store.from_options("objects", s3_options(FAKE_SERVICE, "images", s3_store_host=host))

    assert (store.endpoint, store.url_for("i")) == (endpoint, location)


@pytest.mark.parametrize("url_format", ["auto", "path"])
def test_auto_and_path_addressing_reach_the_bucket(bucket, url_format):
    store = bucket.store(s3_store_bucket_url_format=url_format)
    assert store.prepare() is None
    image, data = image_id(), os.urandom(3 * MiB)

    write(store, image, data).commit()

    assert b"".join(store.read(image)) == data
    assert bucket.objects() == [image]


@pytest.mark.parametrize(
    ("url_format", "url"),
    [
        ("virtual", "https://images.s3.example.com/i"),
        ("path", "https://s3.example.com/images/i"),
    ],
)
def test_url_format_is_botos_addressing_style(url_format, url):
    store = S3Store.from_options(
        "objects",
        s3_options(
            FAKE_SERVICE,
            "images",
            s3_store_host="https://s3.example.com",
            s3_store_bucket_url_format=url_format,
        ),
    )

    # A presigned URL is built offline: it shows where boto3 would send requests.
    signed = store.client.generate_presigned_url("get_object", {"Bucket": "images", "Key": "i"})

    assert store.client.meta.config.s3["addressing_style"] == url_format
    assert signed.split("?")[0] == url


# --- writes ----------------------------------------------------------------------------------


def test_unknown_size_upload_streams_in_parts(store, bucket):
    image, data = image_id(), os.urandom(LARGE)

    pending = write_image(store, image, new_attempt(), io.BytesIO(data), write_plan())
    uploaded = parts_stored(bucket, image, pending.sink.upload_id, expected=2)
    assert bucket.objects() == []
    pending.sink.commit()

    # Two full parts went while the bytes arrived; the last one, shorter, goes on commit.
    assert uploaded == [5 * MiB, 5 * MiB]
    etag = bucket.client.head_object(Bucket=bucket.name, Key=image)["ETag"]
    assert etag.strip('"').endswith("-3")
    assert b"".join(store.read(image)) == data
    assert bucket.uploads() == []


def test_writes_one_after_another_and_side_by_side_keep_their_own_bytes(store):
    # Part buffers go from one write to the next (images/storage/s3.py, PartBuffers): the
    # bytes a buffer held before must never reach another image.
    first, second, third = image_id(), image_id(), image_id()
    big, small = os.urandom(LARGE), os.urandom(7 * MiB + 1)

    write(store, first, big).commit()
    write(store, second, small).commit()
    side_by_side = [store.open_write(third, new_attempt()), store.open_write(first, new_attempt())]
    for start in range(0, LARGE, MiB):
        side_by_side[0].write(small[start : start + MiB])
        side_by_side[1].write(big[start : start + MiB])
    side_by_side[1].abort()
    side_by_side[0].commit()

    assert b"".join(store.read(first)) == big
    assert b"".join(store.read(second)) == small
    assert b"".join(store.read(third)) == small


def parts_stored(bucket, key: str, upload_id: str, *, expected: int) -> list[int]:
    """Sizes of the upload's stored parts, once ``expected`` are (they upload in the
    background: a write returns once its parts are handed to its threads)."""
    deadline = time.monotonic() + 30
    while True:
        listed = bucket.client.list_parts(Bucket=bucket.name, Key=key, UploadId=upload_id)
        sizes = [part["Size"] for part in listed.get("Parts", [])]
        if len(sizes) >= expected or time.monotonic() > deadline:
            return sizes
        time.sleep(0.05)


def test_image_below_large_object_size_is_one_put(store, bucket):
    image, data = image_id(), os.urandom(3 * MiB)

    write(store, image, data).commit()

    etag = bucket.client.head_object(Bucket=bucket.name, Key=image)["ETag"]
    assert etag.strip('"') == hashlib.md5(data).hexdigest()
    assert bucket.uploads() == []


def test_large_object_size_zero_makes_every_image_multipart(bucket):
    store = bucket.store(s3_store_large_object_size="0")
    assert store.prepare() is None
    image, data = image_id(), os.urandom(MiB)

    write(store, image, data).commit()

    etag = bucket.client.head_object(Bucket=bucket.name, Key=image)["ETag"]
    assert etag.strip('"').endswith("-1")
    assert b"".join(store.read(image)) == data


def test_commit_of_a_write_deleted_meanwhile_keeps_nothing(store, bucket):
    image = image_id()
    sink = write(store, image, os.urandom(2 * MiB))
    store.delete(image)

    with pytest.raises(GlanceError) as refused:
        sink.commit()
    sink.abort()

    assert refused.value.status_code == 503
    assert bucket.leftovers(image) == []


def test_missing_bucket_is_created_on_the_first_write(bucket):
    store = bucket.store()
    image, data = image_id(), os.urandom(MiB)

    write(store, image, data).commit()

    assert bucket.objects() == [image]


# --- reads -----------------------------------------------------------------------------------


def test_read_of_a_key_that_vanished_is_a_404(store, bucket):
    image = image_id()
    write(store, image, os.urandom(MiB)).commit()
    bucket.client.delete_object(Bucket=bucket.name, Key=image)

    with pytest.raises(GlanceError) as missing:
        store.read(image)

    assert missing.value.status_code == 404
    assert not store.has_data(image)


# --- prepare ---------------------------------------------------------------------------------


def test_prepare_with_a_wrong_secret_is_a_403_problem_and_other_stores_work(
    settings, bucket, s3_swift
):
    good = s3_options(s3_swift, bucket.name)
    settings.ENABLED_BACKENDS = {"good": good, "bad": {**good, "s3_store_secret_key": "wrong"}}

    problems = prepare_stores()

    assert problems == [
        f"bad: bucket {bucket.name} at {s3_swift['S3_ENDPOINT']} answered 403 Forbidden: "
        "check s3_store_access_key and s3_store_secret_key, and the bucket's permissions"
    ]
    image, data = image_id(), os.urandom(MiB)
    write(all_stores()["good"], image, data).commit()
    assert b"".join(all_stores()["good"].read(image)) == data
    with pytest.raises(GlanceError) as refused:
        all_stores()["bad"].read(image)
    assert refused.value.status_code == 503


def test_prepare_without_the_bucket_and_no_create_says_so(bucket, s3_swift):
    store = bucket.store(s3_store_create_bucket_on_put="false")

    assert store.prepare() == (
        f"objects: bucket {bucket.name} does not exist at {s3_swift['S3_ENDPOINT']} "
        "(create it, or set s3_store_create_bucket_on_put = true)"
    )
    with pytest.raises(GlanceError) as refused:
        store.open_write(image_id(), new_attempt())
    assert refused.value.status_code == 503
    assert not bucket.exists()


def test_prepare_of_an_unreachable_store_says_it_cannot_connect():
    store = S3Store.from_options("objects", s3_options(FAKE_SERVICE, "images"))

    problem = store.prepare()

    assert problem.startswith("objects: cannot connect to http://127.0.0.1:9: ")


# --- sweep -----------------------------------------------------------------------------------


def test_sweep_leaves_uploads_of_keys_that_are_not_images(store, bucket):
    foreign = bucket.client.create_multipart_upload(Bucket=bucket.name, Key="backup.tar")
    dead = image_id()
    sink = store.open_write(dead, new_attempt())

    removed = store.sweep(lambda image, attempt: False)

    assert removed == [f"{dead} upload {sink.upload_id}"]
    assert bucket.uploads() == [f"backup.tar upload {foreign['UploadId']}"]


def test_sweep_asks_about_images_without_attempts(store):
    image = image_id()
    store.open_write(image, new_attempt())
    asked = []

    store.sweep(lambda image, attempt: asked.append((image, attempt)) or True)

    assert asked == [(image, "")]


# --- the store going away --------------------------------------------------------------------


def bring_back_proxy() -> None:
    for _ in range(3):
        if swift_aio("start-proxy").returncode == 0:
            return
        time.sleep(1)
    pytest.fail("the proxy of the s3 tests' Swift did not come back")


class ProxyStoppingSource:
    """Request bytes that stop the store's proxy once ``after`` bytes were read."""

    def __init__(self, size: int, after: int):
        self.size = size
        self.after = after
        self.sent = 0
        self.stopped_at: float | None = None

    def read(self, size: int, /) -> bytes:
        if self.sent >= self.after and self.stopped_at is None:
            assert swift_aio("stop-proxy").returncode == 0
            self.stopped_at = time.monotonic()
        size = min(size, self.size - self.sent)
        self.sent += size
        return os.urandom(size)


@pytest.mark.serial
def test_store_going_away_mid_upload_fails_503_and_sweep_cleans_up(bucket, store):
    image = image_id()
    source = ProxyStoppingSource(200 * MiB, after=30 * MiB)

    try:
        with pytest.raises(GlanceError) as failed:
            write_image(store, image, new_attempt(), source, write_plan())
        failed_after = time.monotonic() - source.stopped_at
        with pytest.raises(GlanceError) as unreadable:
            store.read(image)
    finally:
        bring_back_proxy()

    assert failed.value.status_code == 503
    assert failed_after < 30
    assert source.sent < 100 * MiB  # the write stopped reading soon after the store went
    assert unreadable.value.status_code == 503
    left = bucket.uploads()
    assert [entry.split(" ")[0] for entry in left] == [image]
    assert bucket.segments() != []  # parts that went before the store did
    assert store.sweep(lambda image, attempt: False) == left
    assert bucket.leftovers(image) == []
    data = os.urandom(LARGE)
    write(store, image, data).commit()
    assert b"".join(store.read(image)) == data
