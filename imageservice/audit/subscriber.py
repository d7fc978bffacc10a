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


def _jsonable(changes) -> dict[str, list]:
    # Datetimes and other field values become text: the trail shows them, it computes nothing.
    return {
        name: [
            value if isinstance(value, str | int | float | bool | None) else str(value)
            for value in pair
        ]
        for name, pair in changes.items()
    }
