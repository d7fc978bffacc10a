"""SIGKILL of a whole node in the middle of uploads, staging, imports and deletes loses nothing:
after a restart and the stale timeouts (shortened here), every image that was active still
downloads with its checksum, nothing is stuck, and no bytes are left that no image accounts
for, in the store or in staging."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import threading
import time

from tests.nodes.conftest import create_image, request, wait_for
from tests.nodes.slow_peers import TrickleSource, TrickleUpload

STALE = "3"
OCTET = {"Content-Type": "application/octet-stream"}
# What the schedules run, run now: their intervals (minutes) are not the point here.
HOUSEKEEPING = """
from django.core.management import call_command
for command in ("recover_uploads", "recover_imports", "cleanup_stores"):
    call_command(command, verbosity=0)
call_command("cleanup_staging", older_than=0, verbosity=0)
"""

# Everything the checks need, read in one shell: images of the test, unfinished tasks, and every
# entry of the store and staging directories with what the database says about it.
STATE = """
import json, os
from django.conf import settings
from images.models import Image, ImageLocation, StagedData
from images.storage import staging
from tasks.models import Task
ids = {ids!r}
images = {{i.id: [i.status, i.deleted] for i in Image.objects.filter(pk__in=ids)}}
unfinished = list(Task.objects.filter(image_id__in=ids).exclude(status__in=["success", "failure"])
                  .values_list("id", "status"))
store = settings.DATA_DIR / "images"
located = set(ImageLocation.objects.filter(image__deleted=False).values_list("image_id", flat=True))
store_orphans = [p.name for p in store.iterdir() if p.name not in located] if store.is_dir() else []
root = staging.staging_root()
staged = set(StagedData.objects.filter(image__deleted=False, image__status="uploading")
             .values_list("image_id", flat=True))
staging_orphans = [p.name for p in root.iterdir() if p.name not in staged] if root.is_dir() else []
print(json.dumps({{"images": images, "unfinished": unfinished,
                  "store_orphans": store_orphans, "staging_orphans": staging_orphans}}))
"""


def delete_cut_off_maybe(node, token: str, image_id: str) -> None:
    """DELETE that the kill may cut off: a reset connection is an expected answer here."""
    with contextlib.suppress(OSError):
        request(f"{node.url}/v2/images/{image_id}", method="DELETE", token=token)


def put(node, token: str, path: str, data: bytes) -> int:
    return request(f"{node.url}{path}", method="PUT", token=token, body=data, headers=OCTET)[0]


def status_of(node, token: str, image_id: str) -> str:
    return json.loads(request(f"{node.url}/v2/images/{image_id}", token=token)[2])["status"]


def start_import(node, token: str, image_id: str, method: dict) -> int:
    url = f"{node.url}/v2/images/{image_id}/import"
    return request(url, method="POST", token=token, body={"method": method})[0]


def test_sigkill_mid_traffic_then_restart_loses_nothing_and_leaves_nothing(start_node, cluster):
    source = TrickleSource()
    settings = {
        "UPLOAD_STALE_SECONDS": STALE,
        "IMPORT_STALE_SECONDS": STALE,
        "IMPORT_ALLOWED_PORTS": f"80,443,{source.port}",
    }
    # Threads enough for the three trickling bodies wherever they land, and the other calls.
    node = start_node("all", threads=8, **settings)
    token = cluster.token

    def new_image(name: str) -> str:
        return create_image(node, token, name=name)

    # Images that are active before the crash, with the bytes they must still return after it.
    kept: dict[str, str] = {}
    for index in range(3):
        data = os.urandom(256 * 1024 + index)
        image_id = new_image(f"kept {index}")
        assert put(node, token, f"/v2/images/{image_id}/file", data) == 204
        kept[image_id] = hashlib.sha512(data).hexdigest()
    doomed = {}
    for index in range(3):
        data = os.urandom(128 * 1024)
        image_id = new_image(f"deleted {index}")
        assert put(node, token, f"/v2/images/{image_id}/file", data) == 204
        doomed[image_id] = hashlib.sha512(data).hexdigest()
    waiting = new_image("staged, waiting for its import")
    assert put(node, token, f"/v2/images/{waiting}/stage", os.urandom(64 * 1024)) == 204
    direct = new_image("glance-direct import")
    assert put(node, token, f"/v2/images/{direct}/stage", os.urandom(512 * 1024)) == 204

    # In flight when the node dies: uploads, a staging, web-downloads, a glance-direct import,
    # deletes.
    uploading = [new_image(f"upload {index}") for index in range(2)]
    staging_image = new_image("staging")
    downloading = [new_image(f"web-download {index}") for index in range(2)]
    peers = [TrickleUpload(node.port, f"/v2/images/{i}/file", token) for i in uploading]
    peers.append(TrickleUpload(node.port, f"/v2/images/{staging_image}/stage", token))
    for image_id in downloading:
        assert start_import(node, token, image_id, {"name": "web-download", "uri": source.url()})
    try:
        for image_id in uploading:
            wait_for(lambda i=image_id: status_of(node, token, i) == "saving", 30, "uploads")
        wait_for(lambda: status_of(node, token, staging_image) == "uploading", 30, "staging")
        for image_id in downloading:
            wait_for(lambda i=image_id: status_of(node, token, i) == "importing", 30, "imports")
        time.sleep(0.5)
        deletes = [
            threading.Thread(target=delete_cut_off_maybe, args=(node, token, image_id), daemon=True)
            for image_id in doomed
        ]
        assert start_import(node, token, direct, {"name": "glance-direct"}) == 202
        for delete in deletes:
            delete.start()
        node.signal_group(signal.SIGKILL)
        node.process.wait(timeout=10)
    finally:
        for peer in peers:
            peer.close()
        source.close()
    assert node.group() == []

    node = start_node("all", threads=8, **settings)
    ids = [*kept, *doomed, waiting, direct, *uploading, staging_image, *downloading]

    def settled() -> dict | None:
        time.sleep(2 * int(STALE) + 1)  # a pending task is stale after twice the timeout
        output = cluster.shell(HOUSEKEEPING + STATE.format(ids=ids))
        state = json.loads(output.strip().splitlines()[-1])
        return state if not state["unfinished"] else None

    state = wait_for(settled, 120, "every task to finish")

    images = state["images"]
    for image_id, sha512 in kept.items():
        status, _, body = request(f"{node.url}/v2/images/{image_id}/file", token=token)
        assert (status, hashlib.sha512(body).hexdigest()) == (200, sha512)
    for image_id, sha512 in doomed.items():
        status, _, body = request(f"{node.url}/v2/images/{image_id}/file", token=token)
        if images[image_id] == ["deleted", True]:
            assert status == 404
        else:  # the delete did not get through before the kill: the image is whole
            assert (images[image_id], status) == (["active", False], 200)
            assert hashlib.sha512(body).hexdigest() == sha512
    assert images[waiting] == ["uploading", False]
    assert images[direct][0] in ("active", "uploading")  # imported, or handed back with its data
    for image_id in [*uploading, staging_image, *downloading]:
        assert images[image_id] == ["queued", False], image_id
    assert state["store_orphans"] == []
    assert state["staging_orphans"] == []
    # Nothing stuck: an image the crash cut off takes a new upload at once.
    assert put(node, token, f"/v2/images/{uploading[0]}/file", b"after the crash") == 204
