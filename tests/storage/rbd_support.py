"""RBD stores under test: the pool ``images`` of the real one-node Ceph of
``scripts/ceph-aio.sh``, looked at through librbd directly (not through the store)."""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path

import rados
import rbd
from django.conf import settings

from images.storage.base import ImageStore
from images.storage.stores import driver_for

CEPH_AIO = Path(settings.BASE_DIR) / "scripts" / "ceph-aio.sh"
IMAGE_NAME = re.compile(r"^[0-9a-f-]{36}")


def ceph_aio(*arguments: str, timeout: int = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(CEPH_AIO), *arguments],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@cache
def ceph_service() -> dict[str, str]:
    """The test Ceph, started (installed on a fresh machine) on first use and left running;
    ``status env`` facts (CEPH_CONF, CEPH_USER, CEPH_POOL, CEPH_FSID)."""
    started = ceph_aio("start", timeout=900)
    assert started.returncode == 0, f"ceph-aio.sh start failed:\n{started.stdout}{started.stderr}"
    facts = ceph_aio("status", "env")
    return dict(line.split("=", 1) for line in facts.stdout.splitlines() if "=" in line)


def rbd_options(service: dict[str, str], **overrides: str) -> dict[str, str]:
    """glance_store options of an rbd store in the test pool: objects of 1 MiB, so the contract
    tests' 12 MiB image spans thirteen of them; 10 s timeouts."""
    return {
        "type": "rbd",
        "rbd_store_pool": service["CEPH_POOL"],
        "rbd_store_user": service["CEPH_USER"],
        "rbd_store_ceph_conf": service["CEPH_CONF"],
        "rbd_store_chunk_size": "1",
        "rados_connect_timeout": "10",
        **overrides,
    }


class Pool:
    """The test pool as librbd sees it, through a connection of the tests' own."""

    def __init__(self, service: dict[str, str]):
        self.service = service
        self.cluster = rados.Rados(conffile=service["CEPH_CONF"], rados_id=service["CEPH_USER"])
        for option in ("rados_osd_op_timeout", "rados_mon_op_timeout", "client_mount_timeout"):
            self.cluster.conf_set(option, "30")
        self.cluster.connect()
        self.ioctx = self.cluster.open_ioctx(service["CEPH_POOL"])

    def store(self, name: str = "ceph", **overrides: str) -> ImageStore:
        return driver_for("rbd").from_options(name, rbd_options(self.service, **overrides))

    def names(self, containing: str = "") -> list[str]:
        return sorted(name for name in rbd.RBD().list(self.ioctx) if containing in name)

    def image(self, name: str, snapshot: str | None = None) -> rbd.Image:
        return rbd.Image(self.ioctx, name, snapshot=snapshot, read_only=True)

    def clone(self, image_id: str, clone_name: str) -> None:
        """What Nova and Cinder do with an image: a copy-on-write clone of its snapshot (name
        it ``<image id>-clone`` so that ``remove_new`` finds it)."""
        rbd.RBD().clone(
            self.ioctx, image_id, "snap", self.ioctx, clone_name, features=rbd.RBD_FEATURE_LAYERING
        )

    def remove(self, name: str) -> None:
        """Remove an image whatever it holds (snapshots protected or not); gone is fine."""
        try:
            with rbd.Image(self.ioctx, name) as image:
                for snap in list(image.list_snaps()):
                    if image.is_protected_snap(snap["name"]):
                        image.unprotect_snap(snap["name"])
                    image.remove_snap(snap["name"])
            rbd.RBD().remove(self.ioctx, name)
        except rbd.ImageNotFound:
            pass

    def remove_new(self, before: set[str]) -> None:
        """Remove the images of one test: every image-named one not there before it; clones
        first, so their parents can go."""
        new = [name for name in self.names() if name not in before and IMAGE_NAME.match(name)]
        for name in sorted(new, key=lambda name: not name.endswith("-clone")):
            self.remove(name)


@cache
def shared_pool() -> Pool:
    return Pool(ceph_service())
