"""This node in the registry: one ``Node`` row per running ``serve``, beaten while it runs, so
operators (and the staging check) see which nodes are live and how they are configured."""

from __future__ import annotations

import contextlib
import os
import socket
from datetime import datetime

from django.conf import settings
from django.db import DatabaseError, close_old_connections
from django.utils import timezone

from tasks.models import Node


def beat(role: str) -> None:
    """Register this node or beat its row; a database that is down only delays the beat."""
    close_old_connections()
    now = timezone.now()
    try:
        node, created = Node.objects.get_or_create(
            name=settings.NODE_NAME, defaults=_description(role, now)
        )
        if not created:
            fields = {"heartbeat_at": now, "stopped_at": None}
            if node.pid != os.getpid() or node.stopped_at is not None:
                fields.update(_description(role, now))  # restarted: a new registration
            Node.objects.filter(pk=node.pk).update(**fields)
    except DatabaseError:
        pass


def unregister() -> None:
    """Mark this node stopped (the row stays, for the console's history)."""
    with contextlib.suppress(DatabaseError):
        Node.objects.filter(name=settings.NODE_NAME, pid=os.getpid()).update(
            stopped_at=timezone.now()
        )


def _description(role: str, now: datetime) -> dict:
    return {
        "role": role,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "staging_uri": settings.NODE_STAGING_URI,
        "started_at": now,
        "heartbeat_at": now,
        "stopped_at": None,
    }
