"""The events → audit trail subscriber."""

from __future__ import annotations

from imageservice.audit.models import AuditEvent
from imageservice.events import Event


def record(event: Event) -> None:
    actor = event.actor
    AuditEvent.objects.create(
        at=event.at,
        action=event.action,
        outcome=event.outcome,
        image_id=event.image_id or "",
        task_id=event.task_id or "",
        member_id=event.member_id or "",
        user_id=actor.user_id or "",
        project_id=actor.project_id or "",
        roles=",".join(actor.roles),
        command=actor.command,
        request_id=event.request_id or "",
        node=event.node,
        changes=_jsonable(event.changes),
        detail=event.detail,
    )


def _jsonable(value):
    # Datetimes and other field values become text: the trail shows them, it computes nothing.
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
