"""Glance's notification payloads (its ``glance/notifier.py`` formats), field for field, so
Ceilometer-style consumers read ours unchanged.

Images carry no locations (they may hold credentials) and tasks no input (it may hold URLs
with secrets), as in Glance.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from django.utils import timezone

from images.models import FAILED_IMPORT, IMPORTING_TO_STORES
from images.serializers import HIDDEN_PROPERTIES
from imageservice.config_syntax import split_list


def isotime(at: datetime | None) -> str | None:
    """Glance's ``timeutils.isotime``: seconds precision, ``Z`` for UTC."""
    if at is None:
        return None
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def image_payload(image) -> dict[str, object]:
    # What the API shows: a node's own bookkeeping (os_glance_upload_host …) stays inside.
    properties = {
        name: value
        for name, value in image.property_dict().items()
        if name not in HIDDEN_PROPERTIES
    }
    return {
        "id": image.id,
        "name": image.name,
        "status": image.status,
        "created_at": isotime(image.created_at),
        "updated_at": isotime(image.updated_at),
        "min_disk": image.min_disk,
        "min_ram": image.min_ram,
        "protected": image.protected,
        "checksum": image.checksum,
        "owner": image.owner,
        "disk_format": image.disk_format,
        "container_format": image.container_format,
        "size": image.size,
        "virtual_size": image.virtual_size,
        "is_public": image.visibility == "public",
        "visibility": image.visibility,
        "properties": properties,
        "tags": image.tag_list(),
        "deleted": False,
        "deleted_at": None,
    }


def import_properties(image) -> dict[str, list[str]]:
    """What ``image.prepare`` and ``image.upload`` add: the import's store lists."""
    properties = image.property_dict()
    return {
        IMPORTING_TO_STORES: split_list(properties.get(IMPORTING_TO_STORES) or ""),
        FAILED_IMPORT: split_list(properties.get(FAILED_IMPORT) or ""),
    }


def member_payload(member) -> dict[str, object]:
    return {
        "image_id": member.image_id,
        "member_id": member.member_id,
        "status": member.status,
        "created_at": isotime(member.created_at),
        "updated_at": isotime(member.updated_at),
        "deleted": False,
        "deleted_at": None,
    }


def task_payload(task) -> dict[str, object]:
    # Glance leaves result and message out (None) as well: they may name internal paths.
    return {
        "id": task.id,
        "type": task.type,
        "status": task.status,
        "result": None,
        "owner": task.owner,
        "message": None,
        "expires_at": isotime(task.expires_at),
        "created_at": isotime(task.created_at),
        "updated_at": isotime(task.updated_at),
        "deleted": False,
        "deleted_at": None,
    }


def payload_for(action: str, *, image=None, task=None, member=None) -> Mapping[str, object] | None:
    """The subject's payload for an event of ``action``, or None when no notification is on
    (building it costs queries the audit trail and the counters do not need)."""
    # Imported here: the settings of the publisher are read only once apps are ready.
    from imageservice.notifications import enabled  # noqa: PLC0415

    if not enabled():
        return None
    if action.startswith("task.") and task is not None:
        return {**task_payload(task), **_deleted(action == "task.delete")}
    if action.startswith("image.member.") and member is not None:
        return {**member_payload(member), **_deleted(action == "image.member.delete")}
    if image is None:
        return None
    payload = image_payload(image)
    if action in ("image.prepare", "image.upload"):
        payload.update(import_properties(image))
    return {**payload, **_deleted(action == "image.delete")}


def _deleted(deleted: bool) -> dict[str, object]:
    return {"deleted": True, "deleted_at": isotime(timezone.now())} if deleted else {}
