"""``serve --role``: an API node runs gunicorn only, a worker node the job cluster only, and an
import accepted by one runs on the other, each recording its node."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from tests.nodes.conftest import create_image, request, wait_for


def command_lines(pids: list[int]) -> list[str]:
    lines = []
    for pid in pids:
        try:
            lines.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return lines


def test_api_role_runs_gunicorn_only_and_registers_as_api(start_node, cluster):
    node = start_node("api")

    status, _, _ = request(f"{node.url}/versions")

    assert status == 200
    lines = command_lines(node.group())
    assert any("gunicorn" in line for line in lines)
    assert not any("jobworker" in line for line in lines)
    # No control socket: every gunicorn of the user would share ~/.gunicorn/gunicorn.ctl.
    assert not (Path(cluster.env["HOME"]) / ".gunicorn").exists()
    assert cluster.query(
        f"list(__import__('tasks.models').models.Node.objects.filter(name={node.name!r})"
        ".values_list('role', 'stopped_at'))"
    ) == [["api", None]]


def test_worker_role_runs_imports_an_api_node_accepted(start_node, cluster):
    api = start_node("api")
    worker = start_node("worker")
    image_id = create_image(api, cluster.token, name="roles")
    data = b"role test bytes " * 1000

    staged, _, _ = request(
        f"{api.url}/v2/images/{image_id}/stage",
        method="PUT",
        token=cluster.token,
        body=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    accepted, _, _ = request(
        f"{api.url}/v2/images/{image_id}/import",
        method="POST",
        token=cluster.token,
        body={"method": {"name": "glance-direct"}},
    )

    assert (staged, accepted) == (204, 202)

    def active() -> bool:
        answer = request(f"{api.url}/v2/images/{image_id}", token=cluster.token)[2]
        return json.loads(answer)["status"] == "active"

    wait_for(active, 60, "the import to finish")
    task = cluster.query(
        f"list(__import__('tasks.models').models.Task.objects.filter(image_id={image_id!r})"
        ".values_list('status', 'api_node', 'worker_node'))"
    )
    assert task == [["success", api.name, worker.name]]
    lines = command_lines(worker.group())
    assert any("jobworker" in line for line in lines)
    assert not any("gunicorn" in line for line in lines)
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", worker.port)) != 0  # a worker serves no HTTP
