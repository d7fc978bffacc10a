"""Nodes register with a heartbeat row; tasks and uploads record the node that handled them;
the staging check compares the live nodes' filesystem staging directories."""

from __future__ import annotations

import os
from datetime import timedelta

from django.test import Client
from django.utils import timezone

from images.data import STAGE_HOST, UPLOAD_HOST
from images.models import ImageProperty
from tasks import nodes
from tasks.checks import check_shared_staging
from tasks.models import Node, Task
from tests.support import JSON, reloaded
from tests.test_import import GLANCE_DIRECT, stage, start_import

OCTET = "application/octet-stream"


# transactional_db: beat() first drops an unusable connection (close_old_connections), which
# closes one held in a test's transaction on PostgreSQL.
def test_beat_registers_this_node_then_beats_its_row(transactional_db, settings):
    settings.NODE_NAME = "api-1.example:9292"

    nodes.beat("api")
    first = Node.objects.get()
    Node.objects.filter(pk=first.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    nodes.beat("api")

    node = Node.objects.get()
    assert (node.name, node.role, node.pid) == ("api-1.example:9292", "api", os.getpid())
    assert node.staging_uri == settings.NODE_STAGING_URI
    assert node.started_at == first.started_at
    assert node.heartbeat_at > timezone.now() - timedelta(seconds=5)
    assert node.is_live()


def test_unregister_marks_the_node_stopped_so_it_is_not_live(transactional_db, settings):
    settings.NODE_NAME = "worker-1"
    nodes.beat("worker")

    nodes.unregister()

    node = Node.objects.get()
    assert node.stopped_at is not None
    assert not node.is_live()
    assert list(Node.objects.live()) == []


def test_a_node_silent_past_the_stale_limit_is_not_live(db, settings):
    settings.NODE_STALE_SECONDS = 60
    make_node("quiet", "file:///srv/staging", beat_ago=timedelta(seconds=61))

    assert list(Node.objects.live()) == []


def make_node(name: str, staging_uri: str, beat_ago=timedelta(0)) -> Node:
    return Node.objects.create(
        name=name,
        role="all",
        host=name,
        pid=1,
        staging_uri=staging_uri,
        heartbeat_at=timezone.now() - beat_ago,
    )


def test_staging_check_warns_when_live_nodes_stage_into_different_directories(db, settings):
    settings.NODE_NAME = "api-2:9292"
    settings.NODE_STAGING_URI = "file:///srv/node-2/staging"
    make_node("api-1:9292", "file:///srv/node-1/staging")

    messages = check_shared_staging(databases=["default"])

    assert [message.id for message in messages] == ["imageservice.W050"]
    assert "api-1:9292: file:///srv/node-1/staging" in messages[0].msg
    assert "api-2:9292: file:///srv/node-2/staging" in messages[0].msg


def test_staging_check_is_quiet_for_one_shared_directory_or_dead_nodes(db, settings):
    settings.NODE_NAME = "api-2:9292"
    settings.NODE_STAGING_URI = "file:///shared/staging"
    make_node("api-1:9292", "file:///shared/staging")
    make_node("gone:9292", "file:///elsewhere", beat_ago=timedelta(hours=1))

    assert check_shared_staging(databases=["default"]) == []


def test_staging_check_ignores_an_object_store_staging_area(db, settings):
    settings.NODE_NAME = "api-2:9292"
    settings.NODE_STAGING_URI = "file:///srv/node-2/staging"
    make_node("api-1:9292", "swift://staging")

    assert check_shared_staging(databases=["default"]) == []


def test_import_records_its_api_and_worker_node(owner, make_image, settings):
    settings.NODE_NAME = "node-a:9292"
    image = make_image(disk_format="raw", container_format="bare")
    stage(owner, image)

    response = start_import(owner, image, GLANCE_DIRECT)

    assert response.status_code == 202
    task = Task.objects.get(image_id=image.id)
    assert (task.status, task.api_node, task.worker_node) == (
        "success",
        "node-a:9292",
        "node-a:9292",
    )


def test_stage_records_the_stage_host_hidden_from_the_api_and_import_removes_it(
    owner, make_image, settings
):
    settings.NODE_NAME = "node-b:9292"
    image = make_image(disk_format="raw", container_format="bare")

    assert stage(owner, image).status_code == 204

    assert image.property_dict()[STAGE_HOST] == "http://node-b:9292"
    shown = owner.client().get(f"/v2/images/{image.id}", HTTP_ACCEPT=JSON).json()
    assert STAGE_HOST not in shown
    assert start_import(owner, image, GLANCE_DIRECT).status_code == 202
    assert reloaded(image).status == "active"
    assert not ImageProperty.objects.filter(image=image, name=STAGE_HOST).exists()


def test_stage_host_is_the_worker_self_reference_url_when_set(owner, make_image, settings):
    settings.WORKER_SELF_REFERENCE_URL = "http://10.0.0.7:9292"
    image = make_image(disk_format="raw", container_format="bare")

    stage(owner, image)

    assert image.property_dict()[STAGE_HOST] == "http://10.0.0.7:9292"


def test_upload_records_its_node_hidden_from_the_api(owner, make_image, settings):
    settings.NODE_NAME = "node-c:9292"
    image = make_image(disk_format="raw", container_format="bare")

    response = owner.client().put(f"/v2/images/{image.id}/file", data=b"data", content_type=OCTET)

    assert response.status_code == 204
    assert reloaded(image).property_dict()[UPLOAD_HOST] == "node-c:9292"
    shown = owner.client().get(f"/v2/images/{image.id}", HTTP_ACCEPT=JSON).json()
    assert UPLOAD_HOST not in shown


def test_console_lists_nodes_with_their_liveness_and_tasks_with_their_nodes(admin, settings):
    make_node("api-1:9292", "file:///shared/staging")
    make_node("gone:9292", "file:///shared/staging", beat_ago=timedelta(hours=1))
    task = Task.objects.create(owner="p", api_node="api-1:9292", worker_node="worker-1")
    operator = Client()
    operator.force_login(admin.user)

    nodes_page = operator.get("/admin/tasks/node/").content.decode()
    task_page = operator.get(f"/admin/tasks/task/{task.id}/change/").content.decode()

    assert "api-1:9292" in nodes_page and "gone:9292" in nodes_page
    assert nodes_page.count('alt="True"') == 1 and nodes_page.count('alt="False"') == 1
    assert "api-1:9292" in task_page and "worker-1" in task_page
    assert operator.get("/admin/tasks/node/add/").status_code == 403
