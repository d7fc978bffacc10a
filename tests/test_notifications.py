"""Glance's notifications, consumed from the machine's real RabbitMQ (127.0.0.1:5672): event
types, priorities and payloads as Glance sends them; off by default; a dead broker never fails
or slows the API."""

from __future__ import annotations

import json
import socket
import time
import uuid

import kombu
import pytest
from prometheus_client import REGISTRY

from images.models import StagedData
from imageservice.notifications import publisher as notification_publisher

pytestmark = pytest.mark.django_db(transaction=True)

BROKER = "amqp://guest:guest@127.0.0.1:5672//"
OCTET = "application/octet-stream"
DATA = b"notified bytes " * 1000
PATCH = "application/openstack-images-v2.1-json-patch"
IMAGE_FIELDS = {
    "id", "name", "status", "created_at", "updated_at", "min_disk", "min_ram", "protected",
    "checksum", "owner", "disk_format", "container_format", "size", "virtual_size", "is_public",
    "visibility", "properties", "tags", "deleted", "deleted_at",
}  # fmt: skip
TASK_FIELDS = {
    "id", "type", "status", "result", "owner", "message", "expires_at", "created_at",
    "updated_at", "deleted", "deleted_at",
}  # fmt: skip


class Bus:
    """A queue bound to this test's exchange and topic, as a Ceilometer-style consumer binds."""

    def __init__(self, exchange: str, topic: str) -> None:
        self.topic = topic
        self.connection = kombu.Connection(BROKER)
        self.exchange = kombu.Exchange(exchange, type="topic", durable=False, auto_delete=False)
        self.queue = kombu.Queue(
            f"test-{uuid.uuid4().hex}",
            exchange=self.exchange,
            bindings=[
                kombu.binding(self.exchange, routing_key=f"{topic}.info"),
                kombu.binding(self.exchange, routing_key=f"{topic}.error"),
            ],
            exclusive=True,
            auto_delete=True,
        )
        self.queue(self.connection.channel()).declare()
        self.messages: list[dict] = []

    def receive(self, count: int, timeout: float = 10) -> list[dict]:
        """The next ``count`` notifications (oslo.message of each messagingv2 envelope)."""
        deadline = time.monotonic() + timeout
        bound = self.queue(self.connection.channel())
        while len(self.messages) < count and time.monotonic() < deadline:
            message = bound.get(no_ack=True)
            if message is None:
                time.sleep(0.05)
                continue
            envelope = message.payload
            assert envelope["oslo.version"] == "2.0"
            self.messages.append(json.loads(envelope["oslo.message"]))
        received, self.messages = self.messages[:count], self.messages[count:]
        return received

    def close(self) -> None:
        channel = self.connection.channel()
        # The queues oslo.messaging declared for this test's topic, then the exchange.
        for priority in ("info", "error"):
            channel.queue_delete(f"{self.topic}.{priority}")
        channel.exchange_delete(self.exchange.name)
        self.connection.release()


@pytest.fixture
def bus(settings):
    run = uuid.uuid4().hex[:12]
    settings.NOTIFICATION_DRIVER = "messagingv2"
    settings.TRANSPORT_URL = "rabbit://guest:guest@127.0.0.1:5672/"
    settings.CONTROL_EXCHANGE = f"imageservice-test-{run}"
    settings.NOTIFICATION_TOPICS = [f"notifications-{run}"]
    bus = Bus(settings.CONTROL_EXCHANGE, settings.NOTIFICATION_TOPICS[0])
    yield bus
    notification_publisher.publisher().flush(10)
    bus.close()


def event_types(messages: list[dict]) -> list[str]:
    return [message["event_type"] for message in messages]


def create(persona, **body) -> dict:
    body = {"name": "notified", "disk_format": "raw", "container_format": "bare", **body}
    response = persona.client().post("/v2/images", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def counted(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_image_lifecycle_sends_glances_event_types_and_payloads(bus, owner):
    image = create(owner, tags=["t1"], os_distro="debian")
    owner.client().patch(
        f"/v2/images/{image['id']}",
        json.dumps([{"op": "replace", "path": "/name", "value": "renamed"}]),
        content_type=PATCH,
    )
    owner.client().put(f"/v2/images/{image['id']}/file", DATA, content_type=OCTET)
    owner.client().delete(f"/v2/images/{image['id']}")

    messages = bus.receive(6)

    assert event_types(messages) == [
        "image.create",
        "image.update",
        "image.prepare",
        "image.upload",
        "image.activate",
        "image.delete",
    ]
    assert {m["publisher_id"] for m in messages} == {"image.localhost"}
    assert {m["priority"] for m in messages} == {"INFO"}
    created = messages[0]["payload"]
    assert created == {
        "id": image["id"],
        "name": "notified",
        "status": "queued",
        "created_at": image["created_at"],
        "updated_at": image["updated_at"],
        "min_disk": 0,
        "min_ram": 0,
        "protected": False,
        "checksum": None,
        "owner": owner.project_id,
        "disk_format": "raw",
        "container_format": "bare",
        "size": None,
        "virtual_size": None,
        "is_public": False,
        "visibility": "shared",
        "properties": {"os_distro": "debian"},
        "tags": ["t1"],
        "deleted": False,
        "deleted_at": None,
    }
    assert messages[1]["payload"]["name"] == "renamed"
    prepared, uploaded, activated = (m["payload"] for m in messages[2:5])
    assert prepared["status"] == "saving"
    assert prepared["os_glance_importing_to_stores"] == []
    assert prepared["os_glance_failed_import"] == []
    assert (uploaded["status"], uploaded["size"]) == ("active", len(DATA))
    assert uploaded["os_glance_importing_to_stores"] == []
    assert set(activated) == IMAGE_FIELDS
    assert activated["checksum"] == uploaded["checksum"] is not None
    deleted = messages[5]["payload"]
    assert (deleted["status"], deleted["deleted"]) == ("deleted", True)
    assert deleted["deleted_at"].endswith("Z")
    assert deleted["properties"] == {"os_distro": "debian"}


def test_member_changes_send_member_payloads(bus, owner, member):
    image = create(owner, visibility="shared")
    path = f"/v2/images/{image['id']}/members"
    owner.client().post(path, {"member": member.project_id}, format="json")
    member.client().put(f"{path}/{member.project_id}", {"status": "accepted"}, format="json")
    owner.client().delete(f"{path}/{member.project_id}")

    messages = bus.receive(4)

    assert event_types(messages) == [
        "image.create",
        "image.member.create",
        "image.member.update",
        "image.member.delete",
    ]
    created, updated, deleted = (m["payload"] for m in messages[1:])
    assert set(created) == {
        "image_id", "member_id", "status", "created_at", "updated_at", "deleted", "deleted_at"
    }  # fmt: skip
    assert (created["image_id"], created["member_id"], created["status"]) == (
        image["id"],
        member.project_id,
        "pending",
    )
    assert updated["status"] == "accepted"
    assert (deleted["deleted"], deleted["status"]) == (True, "accepted")


def test_import_sends_task_events_and_upload(bus, owner):
    image = create(owner)
    owner.client().put(f"/v2/images/{image['id']}/stage", DATA, content_type=OCTET)
    owner.client().post(
        f"/v2/images/{image['id']}/import", {"method": {"name": "glance-direct"}}, format="json"
    )

    messages = bus.receive(9)

    assert event_types(messages) == [
        "image.create",
        "image.update",  # the stage
        "task.create",
        "task.run",
        "task.processing",
        "image.prepare",
        "image.upload",
        "image.activate",
        "task.success",
    ]
    tasks = [m["payload"] for m in messages if m["event_type"].startswith("task.")]
    assert {frozenset(payload) for payload in tasks} == {frozenset(TASK_FIELDS)}
    assert [payload["status"] for payload in tasks] == [
        "pending",
        "pending",
        "processing",
        "success",
    ]
    assert {(p["type"], p["owner"], p["result"], p["message"]) for p in tasks} == {
        ("api_image_import", owner.project_id, None, None)
    }
    assert tasks[3]["expires_at"].endswith("Z")
    assert messages[6]["payload"]["status"] == "active"


def test_failed_import_sends_task_failure(bus, owner):
    image = create(owner)
    owner.client().put(f"/v2/images/{image['id']}/stage", DATA, content_type=OCTET)
    StagedData.objects.filter(image_id=image["id"]).delete()
    owner.client().post(
        f"/v2/images/{image['id']}/import", {"method": {"name": "glance-direct"}}, format="json"
    )

    messages = bus.receive(6)

    assert event_types(messages)[-1] == "task.failure"
    assert messages[-1]["payload"]["status"] == "failure"
    assert "image.upload" not in event_types(messages)


def test_failed_upload_sends_error_with_message(bus, owner):
    image = create(owner, disk_format="qcow2")  # raw bytes: refused once they went by

    response = owner.client().put(f"/v2/images/{image['id']}/file", DATA, content_type=OCTET)

    assert response.status_code == 415
    messages = bus.receive(3)
    assert event_types(messages) == ["image.create", "image.prepare", "image.upload"]
    assert messages[2]["priority"] == "ERROR"
    assert messages[2]["payload"].startswith(
        f"Failed to upload image data for image {image['id']}: "
    )


def test_disabled_notifications_are_not_sent(bus, owner, settings):
    settings.DISABLED_NOTIFICATIONS = ["image.update", "image.member"]
    image = create(owner, visibility="shared")
    owner.client().put(f"/v2/images/{image['id']}/tags/x")
    owner.client().post(f"/v2/images/{image['id']}/members", {"member": "p"}, format="json")
    owner.client().delete(f"/v2/images/{image['id']}")

    assert event_types(bus.receive(3, timeout=3)) == ["image.create", "image.delete"]


def test_no_notifications_without_a_messaging_driver(bus, owner, settings):
    settings.NOTIFICATION_DRIVER = ""

    create(owner)

    assert bus.receive(1, timeout=1.5) == []


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def timed_creates(persona, count: int) -> tuple[list[int], float]:
    """Statuses of ``count`` image creates and the slowest one's seconds."""
    statuses, slowest = [], 0.0
    for n in range(count):
        started = time.monotonic()
        response = persona.client().post("/v2/images", {"name": f"i{n}"}, format="json")
        slowest = max(slowest, time.monotonic() - started)
        statuses.append(response.status_code)
    return statuses, slowest


# Alone (make test-serial): it compares create times, which other tests' load would skew.
@pytest.mark.serial
def test_dead_broker_never_fails_or_slows_the_api(owner, settings):
    _, baseline = timed_creates(owner, 10)  # notifications off
    settings.NOTIFICATION_DRIVER = "messagingv2"
    settings.TRANSPORT_URL = f"rabbit://guest:guest@127.0.0.1:{closed_port()}/"
    settings.NOTIFICATION_RETRY = 0
    failed_before = counted("imageservice_notification_failures_total", reason="send")
    full_before = counted("imageservice_notification_failures_total", reason="queue_full")

    statuses, slowest = timed_creates(owner, 10)

    assert statuses == [201] * 10
    # Sends happen off the request path: no create waits for the dead broker.
    assert slowest < baseline + 0.5, f"slowest create {slowest:.2f} s, {baseline:.2f} s without"
    assert notification_publisher.publisher().flush(60)
    failed = counted("imageservice_notification_failures_total", reason="send") - failed_before
    full = counted("imageservice_notification_failures_total", reason="queue_full") - full_before
    assert (failed, full) == (10, 0)


def test_full_queue_drops_and_counts(settings):
    settings.NOTIFICATION_DRIVER = "messagingv2"
    settings.TRANSPORT_URL = f"rabbit://guest:guest@127.0.0.1:{closed_port()}/"
    settings.NOTIFICATION_RETRY = 2  # each send waits for its retries: the queue fills
    settings.NOTIFICATION_QUEUE_SIZE = 1
    publisher = notification_publisher.publisher()
    before = {
        reason: counted("imageservice_notification_failures_total", reason=reason)
        for reason in ("send", "queue_full")
    }

    started = time.monotonic()
    for _ in range(5):
        publisher.submit(notification_publisher.Notification("info", "image.update", {}))
    submitted_in = time.monotonic() - started

    assert submitted_in < 0.5
    assert publisher.flush(60)
    failed = counted("imageservice_notification_failures_total", reason="send") - before["send"]
    full = (
        counted("imageservice_notification_failures_total", reason="queue_full")
        - before["queue_full"]
    )
    assert failed + full == 5
    assert full >= 3
