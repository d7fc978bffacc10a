"""Glance's notifications on a message bus with oslo.messaging (docs/operator.md).

On when ``[oslo_messaging_notifications] driver`` is ``messagingv2`` (or ``messaging``) and a
transport URL is set (that section's ``transport_url``, else ``[DEFAULT] transport_url``), from
``GLANCE_API_CONF`` or the environment; off by default.
"""

from __future__ import annotations

from django.conf import settings

MESSAGING_DRIVERS = {"messaging", "messagingv2"}


def transport_url() -> str:
    return settings.NOTIFICATION_TRANSPORT_URL or settings.TRANSPORT_URL


def enabled() -> bool:
    return settings.NOTIFICATION_DRIVER in MESSAGING_DRIVERS and bool(transport_url())


def is_disabled(event_type: str) -> bool:
    """Glance's ``disabled_notifications``: an event type or its group (``image``, ``task``,
    ``image.member``)."""
    disabled = set(settings.DISABLED_NOTIFICATIONS)
    group = event_type.rsplit(".", 1)[0]
    return event_type in disabled or group in disabled or event_type.split(".")[0] in disabled
