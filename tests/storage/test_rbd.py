"""The rbd store against the real one-node Ceph: options, what the pool holds after a write
(image, object size, protected snapshot, location), growing and thin writes, clones that block
a delete, server-side copies between pools, and an unreachable cluster."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
import rbd

from images.storage.base import DataInUse, new_attempt
from images.storage.ceph_rbd import RbdStore
from images.storage.stores import all_stores, driver_for
from imageservice.errors import GlanceError
from tests.storage.rbd_support import Pool, shared_pool

MiB = 1024 * 1024


@pytest.fixture
def pool(request):
    pool = shared_pool()
    before = set(pool.names())
    yield pool
    pool.remove_new(before)


def image_id() -> str:
    return str(uuid.uuid4())


def write(store, image: str, data: bytes, *, size: int | None = None, chunk: int = MiB):
    sink = store.open_write(image, new_attempt(), size)
    for start in range(0, len(data), chunk):
        sink.write(data[start : start + chunk])
    return sink


def allocated(pool, name: str) -> int:
    """Bytes of the image that RADOS holds objects for (unwritten ranges hold none)."""
    extents = []
    with pool.image(name) as image:
        image.diff_iterate(0, image.size(), None, lambda *extent: extents.append(extent))
    return sum(length for _, length, exists in extents if exists)


def test_options_default_as_glance_store():
    store = RbdStore.from_options("ceph", {"type": "rbd"})

    assert (store.pool, store.user, store.ceph_conf) == ("images", None, "")
    assert (store.chunk_size, store.order, store.thin_provisioning) == (8 * MiB, 23, False)
    assert store.timeout == 30  # glance_store's -1 waits forever


@pytest.mark.parametrize(
    ("option", "value", "reason"),
    [
        ("rbd_store_chunk_size", "0", "rbd_store_chunk_size must be at least 1, got 0"),
        ("rbd_store_chunk_size", "12", "rbd_store_chunk_size must be a power of two, got 12"),
        ("rbd_store_chunk_size", "big", "rbd_store_chunk_size must be an integer, got 'big'"),
        ("rbd_thin_provisioning", "maybe", "rbd_thin_provisioning must be true or false"),
        ("rados_connect_timeout", "soon", "rados_connect_timeout must be an integer"),
    ],
)
def test_a_bad_option_makes_the_store_unavailable_with_the_reason(settings, option, value, reason):
    settings.ENABLED_BACKENDS = {"ceph": {"type": "rbd", option: value}}

    unavailable = all_stores()["ceph"]
    assert unavailable.type_name == "unavailable"
    assert reason in unavailable.reason


def test_commit_leaves_what_glance_leaves_in_the_pool(pool):
    store, image, data = pool.store(), image_id(), os.urandom(3 * MiB + 5)

    write(store, image, data, size=len(data)).commit()

    assert pool.names(image) == [image]
    with pool.image(image) as head:
        assert head.size() == len(data)
        assert head.stat()["obj_size"] == MiB  # rbd_store_chunk_size
        assert [snap["name"] for snap in head.list_snaps()] == ["snap"]
        assert head.is_protected_snap("snap")
        assert head.features() & rbd.RBD_FEATURE_LAYERING
    with pool.image(image, snapshot="snap") as snapshot:
        assert snapshot.read(0, len(data)) == data
    fsid = pool.service["CEPH_FSID"]
    assert store.url_for(image) == f"rbd://{fsid}/images/{image}/snap"


def test_a_write_of_known_size_creates_the_image_at_that_size(pool):
    store, image = pool.store(), image_id()

    sink = store.open_write(image, new_attempt(), 20 * MiB)

    (partial,) = pool.names(image)
    with pool.image(partial) as created:
        assert created.size() == 20 * MiB
    sink.abort()
    assert pool.names(image) == []


def test_a_write_of_unknown_size_grows_in_steps_and_ends_at_the_exact_size(pool):
    store, image, data = pool.store(), image_id(), os.urandom(9 * MiB + 77)
    sink = write(store, image, data[: 5 * MiB])
    (partial,) = pool.names(image)
    with pool.image(partial) as growing:
        grown = growing.size()

    for start in range(5 * MiB, len(data), MiB):
        sink.write(data[start : start + MiB])
    sink.commit()

    assert grown == 6 * MiB  # steps of 2 and 4 MiB (doubling from the 1 MiB chunk size)
    with pool.image(image) as done:
        assert done.size() == len(data)
    assert b"".join(store.read(image)) == data


def test_thin_provisioning_writes_no_zero_chunks(pool):
    data = bytes(4 * MiB) + os.urandom(MiB) + bytes(3 * MiB)
    thin, thick = image_id(), image_id()

    write(pool.store(rbd_thin_provisioning="true"), thin, data).commit()
    write(pool.store(), thick, data).commit()

    assert allocated(pool, thin) == MiB
    assert allocated(pool, thick) == len(data)
    assert b"".join(pool.store().read(thin)) == data


def test_delete_of_an_image_with_a_clone_is_refused_until_the_clone_is_gone(pool):
    store, image, data = pool.store(), image_id(), os.urandom(2 * MiB)
    write(store, image, data).commit()
    pool.clone(image, f"{image}-clone")

    with pytest.raises(DataInUse) as refused:
        store.delete(image)

    assert refused.value.status_code == 409
    assert refused.value.message == (
        f"Image {image} could not be deleted because it is in use: The image cannot be deleted "
        "because it is in use through the backend store outside of Glance."
    )
    with pool.image(image) as kept:
        assert kept.is_protected_snap("snap")
    assert b"".join(store.read(image)) == data

    pool.remove(f"{image}-clone")
    store.delete(image)

    assert pool.names(image) == []


def test_copy_from_another_pool_of_the_cluster_is_made_by_librbd(pool):
    source = pool.store("ceph")
    target = pool.store("ceph2", rbd_store_pool=pool.service["CEPH_SECOND_POOL"])
    image, data = image_id(), os.urandom(5 * MiB + 3)
    write(source, image, data).commit()

    copied = target.copy_from(source, image, new_attempt())
    copied.commit()

    assert b"".join(target.read(image)) == data
    second = Pool({**pool.service, "CEPH_POOL": pool.service["CEPH_SECOND_POOL"]})
    with second.image(image) as copy:
        assert copy.is_protected_snap("snap")
        assert copy.stat()["obj_size"] == MiB
    target.delete(image)
    assert second.names(image) == []


def test_copy_from_a_store_of_another_type_is_left_to_streaming(pool, tmp_path):
    files = driver_for("file").from_options("files", {"filesystem_store_datadir": str(tmp_path)})

    assert pool.store().copy_from(files, image_id(), new_attempt()) is None


def test_an_unreachable_cluster_fails_requests_with_503_in_time(pool, tmp_path):
    conf = tmp_path / "nowhere.conf"
    conf.write_text(
        "[global]\nmon host = 127.0.0.1:1\nauth client required = none\nms bind ipv6 = false\n"
    )
    store = pool.store(rbd_store_ceph_conf=str(conf), rados_connect_timeout="2")

    with pytest.raises(GlanceError) as failed:
        store.open_write(image_id(), new_attempt())

    assert failed.value.status_code == 503
    assert "Store ceph is not available" in failed.value.message
    assert store.prepare().startswith("ceph: cannot connect to the Ceph cluster")


def test_missing_bindings_are_a_start_up_error_saying_what_to_install(tmp_path):
    conf = tmp_path / "glance-api.conf"
    conf.write_text("[DEFAULT]\nenabled_backends = ceph:rbd\n\n[ceph]\nrbd_store_pool = images\n")
    # A process whose path lacks the linked bindings: as a venv without `make ceph-bindings`.
    script = (
        "import sys; sys.path[:] = [p for p in sys.path if 'ceph-bindings' not in p]\n"
        "import django; django.setup()\n"
        "from django.core.management import call_command\n"
        "call_command('check')\n"
    )
    checked = subprocess.run(
        [sys.executable, "-c", script],
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "imageservice.settings",
            "GLANCE_API_CONF": str(conf),
            "DATA_DIR": str(tmp_path / "data"),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert checked.returncode != 0
    assert "imageservice.E011" in checked.stderr
    assert "Store ceph cannot be used: the Ceph bindings" in checked.stderr
    assert "python3-rados and python3-rbd" in checked.stderr
    assert "make ceph-bindings" in checked.stderr
    assert "imageservice.E007" not in checked.stderr
