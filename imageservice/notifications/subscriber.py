"""The events → Glance notifications subscriber: which of Glance's event types each of our
actions is, and with what priority."""

from __future__ import annotations

from imageservice.events import FAILURE, Event
from imageservice.notifications import enabled, is_disabled
from imageservice.notifications.publisher import Notification, publisher

# Our action → Glance's event type. Tag, status and store changes are saves of the image in
# Glance, hence image.update; a stage is the save that moves the image to uploading.
GLANCE_EVENT_TYPES = {
    "image.create": "image.create",
    "image.update": "image.update",
    "image.tag.add": "image.update",
    "image.tag.remove": "image.update",
    "image.deactivate": "image.update",
    "image.reactivate": "image.update",
    "image.stage": "image.update",
    "image.store.delete": "image.update",
    "image.delete": "image.delete",
    "image.prepare": "image.prepare",
    "image.upload": "image.upload",
    "image.member.create": "image.member.create",
    "image.member.update": "image.member.update",
    "image.member.delete": "image.member.delete",
    "task.create": "task.create",
    "task.run": "task.run",
    "task.processing": "task.processing",
    "task.success": "task.success",
    "task.failure": "task.failure",
    "task.delete": "task.delete",
}


def notifications_for(event: Event) -> list[Notification]:
    event_type = GLANCE_EVENT_TYPES.get(event.action)
    if event_type is None:
        return []
    if event.outcome == FAILURE:
        # Glance reports a failed upload as an error whose payload is the message alone; other
        # failed actions changed nothing and send nothing.
        if event_type == "image.upload":
            return [Notification("error", event_type, event.detail)]
        if event_type != "task.failure":
            return []
    if event.payload is None:
        return []
    sent = [Notification("info", event_type, dict(event.payload))]
    if event_type == "image.upload" and event.facts.get("activated"):
        plain = {
            key: value
            for key, value in event.payload.items()
            if key not in ("os_glance_importing_to_stores", "os_glance_failed_import")
        }
        sent.append(Notification("info", "image.activate", plain))
    return sent


def publish(event: Event) -> None:
    if not enabled():
        return
    for notification in notifications_for(event):
        if not is_disabled(notification.event_type):
            publisher().submit(notification)
