"""SIGTERM to a node's whole process group (systemd's default) stops it within
SHUTDOWN_GRACE_SECONDS: the upload in flight fails cleanly, the running import is handed back as
retryable, and no process of the group is left."""

from __future__ import annotations

import json
import signal
import time

from tasks.cluster import STOPPED_MESSAGE
from tests.nodes.conftest import create_image, request, wait_for
from tests.nodes.slow_peers import TrickleSource, TrickleUpload

GRACE = 10


def image_status(node, token: str, image_id: str) -> str:
    return json.loads(request(f"{node.url}/v2/images/{image_id}", token=token)[2])["status"]


def test_group_sigterm_stops_within_the_grace_period_with_nothing_stuck(start_node, cluster):
    source = TrickleSource()
    node = start_node(
        "all",
        SHUTDOWN_GRACE_SECONDS=str(GRACE),
        IMPORT_ALLOWED_PORTS=f"80,443,{source.port}",
    )
    token = cluster.token
    uploaded = create_image(node, token, name="stopped upload")
    imported = create_image(node, token, name="stopped import")
    upload = TrickleUpload(node.port, f"/v2/images/{uploaded}/file", token)
    status, _, _ = request(
        f"{node.url}/v2/images/{imported}/import",
        method="POST",
        token=token,
        body={"method": {"name": "web-download", "uri": source.url()}},
    )
    assert status == 202
    try:
        wait_for(lambda: image_status(node, token, uploaded) == "saving", 30, "the upload")
        wait_for(lambda: image_status(node, token, imported) == "importing", 30, "the import")
        time.sleep(1)  # both in the middle of their transfer

        started = time.monotonic()
        node.signal_group(signal.SIGTERM)
        node.process.wait(timeout=GRACE + 5)
        took = time.monotonic() - started
    finally:
        upload.close()
        source.close()

    # A second of slack for the machine's scheduling (the suite shares two cores).
    assert took <= GRACE + 1, f"stopped in {took:.1f} s:\n{node.log_text()}"
    assert node.group() == []
    # Nothing waits for a stale timeout: read the state straight from the database.
    images = dict(
        cluster.query(
            "list(__import__('images.models').models.Image.objects"
            f".filter(pk__in=[{uploaded!r}, {imported!r}]).values_list('id', 'status'))"
        )
    )
    assert images == {uploaded: "queued", imported: "queued"}
    task = cluster.query(
        f"list(__import__('tasks.models').models.Task.objects.filter(image_id={imported!r})"
        ".values_list('status', 'message'))"
    )
    assert task == [["failure", STOPPED_MESSAGE]]
    leftovers = [
        path.name
        for directory in (cluster.data_dir / "images", cluster.data_dir / "staging")
        if directory.is_dir()
        for path in directory.iterdir()
        if uploaded in path.name or imported in path.name
    ]
    assert leftovers == []
