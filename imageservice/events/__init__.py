"""One stream of state changes: every write path of the service layer emits an :class:`Event`
once, after its transaction commits, and the subscribers (the audit trail, Glance's
notifications, the Prometheus counters) all receive that same event, so they cannot disagree.

Work that is rolled back emits nothing: :func:`emit` hands the event to
``transaction.on_commit``, which drops it with the transaction (outside a transaction it runs
at once). Subscribers must not raise into the write path; one that fails is logged and the
others still run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from importlib import import_module

from django.db import transaction
from django.utils import timezone

from imageservice.events.context import Actor, current_actor, current_request_id, node_name

logger = logging.getLogger(__name__)

SUCCESS = "success"
FAILURE = "failure"

# Dotted paths, imported on first use: the subscribers import models and settings-driven
# modules, and the service modules that emit must not import them back.
SUBSCRIBERS = (
    "imageservice.audit.subscriber.record",
    "imageservice.notifications.subscriber.publish",
    "imageservice.metrics.subscriber.count",
)


@dataclass(frozen=True)
class Event:
    """One state change: what happened, to what, by whom, with what outcome, where."""

    action: str
    outcome: str = SUCCESS
    image_id: str | None = None
    task_id: str | None = None
    member_id: str | None = None
    # Field or property name → [old, new] for edits of an image's metadata.
    changes: Mapping[str, list] = field(default_factory=dict)
    detail: str = ""
    # Facts for the subscribers: the store written, bytes, method, duration in seconds.
    facts: Mapping[str, object] = field(default_factory=dict)
    # Glance's notification payload of the image, member or task as it stood at emit time.
    payload: Mapping[str, object] | None = None
    actor: Actor = field(default_factory=Actor)
    request_id: str | None = None
    node: str = ""
    at: datetime = field(default_factory=timezone.now)


def emit(
    action: str,
    *,
    outcome: str = SUCCESS,
    image=None,
    task=None,
    member=None,
    image_id: str | None = None,
    changes: Mapping[str, list] | None = None,
    detail: str = "",
    facts: Mapping[str, object] | None = None,
) -> Event:
    """Record that ``action`` happened to ``image``/``task``/``member`` (model instances;
    ``image_id`` alone for an image whose row is gone).

    The payload Glance's notifications carry is taken now, while the objects still hold the
    state being committed (an image's properties before its delete removes them).
    """
    # Imported here: the payload formatters read models, which import the storage layer.
    from imageservice.notifications import payloads  # noqa: PLC0415

    subject = image or task or member
    if image is not None:
        image_id = image.id
    elif image_id is None:
        image_id = getattr(subject, "image_id", None)
    event = Event(
        action=action,
        outcome=outcome,
        image_id=image_id,
        task_id=task.id if task is not None else None,
        member_id=member.member_id if member is not None else None,
        changes=dict(changes or {}),
        detail=detail,
        facts=dict(facts or {}),
        payload=payloads.payload_for(action, image=image, task=task, member=member),
        actor=current_actor(),
        request_id=current_request_id() or (task.request_id if task is not None else None),
        node=node_name(),
    )
    transaction.on_commit(lambda: dispatch(event))
    return event


_subscribers: list[Callable[[Event], None]] | None = None


def subscribers() -> list[Callable[[Event], None]]:
    global _subscribers
    if _subscribers is None:
        loaded = []
        for path in SUBSCRIBERS:
            module, name = path.rsplit(".", 1)
            loaded.append(getattr(import_module(module), name))
        _subscribers = loaded
    return _subscribers


def dispatch(event: Event) -> None:
    for subscriber in subscribers():
        try:
            subscriber(event)
        except Exception:
            # An audit row or a counter that failed must not turn a committed write into an
            # error for the client: the write happened.
            logger.exception("Event subscriber %s failed on %s", subscriber.__name__, event.action)


def field_changes(before: Mapping[str, object], after: Mapping[str, object]) -> dict[str, list]:
    """``name → [old, new]`` for every key whose value differs (None where absent)."""
    return {
        name: [before.get(name), after.get(name)]
        for name in sorted(set(before) | set(after))
        if before.get(name) != after.get(name)
    }
