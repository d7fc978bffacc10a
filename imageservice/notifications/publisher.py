"""Sends notifications from a thread of its own, so a slow or dead broker never holds up the
request that caused them.

Each process (gunicorn worker, job worker) starts its thread on its first notification, after
any fork. The queue is bounded (``NOTIFICATION_QUEUE_SIZE``): when the broker cannot keep up,
further notifications are dropped, logged and counted instead of piling up in memory. A send
gives up after ``NOTIFICATION_RETRY`` reconnection attempts, logged and counted.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from dataclasses import dataclass

from django.conf import settings

from imageservice import metrics
from imageservice.notifications import transport_url

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Notification:
    priority: str  # "info" or "error", as Glance sends them
    event_type: str
    payload: object


class Publisher:
    def __init__(self) -> None:
        self.queue: queue.Queue[Notification] = queue.Queue(settings.NOTIFICATION_QUEUE_SIZE)
        self.thread = threading.Thread(target=self._run, name="notifications", daemon=True)
        self.thread.start()

    def submit(self, notification: Notification) -> None:
        try:
            self.queue.put_nowait(notification)
        except queue.Full:
            metrics.NOTIFICATION_FAILURES.labels(reason="queue_full").inc()
            logger.warning(
                "Notification %s dropped: %d are waiting for the message bus already",
                notification.event_type,
                self.queue.maxsize,
            )

    def flush(self, timeout: float) -> bool:
        """Wait until every submitted notification was sent or given up (tests, shutdown)."""
        done = threading.Event()

        def wait() -> None:
            self.queue.join()
            done.set()

        threading.Thread(target=wait, daemon=True).start()
        return done.wait(timeout)

    def _run(self) -> None:
        notifier = None
        while True:
            notification = self.queue.get()
            try:
                if notifier is None:
                    notifier = _notifier()
                send = notifier.error if notification.priority == "error" else notifier.info
                send({}, notification.event_type, notification.payload)
                metrics.NOTIFICATIONS_SENT.labels(event_type=notification.event_type).inc()
            except Exception as error:
                metrics.NOTIFICATION_FAILURES.labels(reason="send").inc()
                logger.warning("Notification %s not sent: %s", notification.event_type, error)
            finally:
                self.queue.task_done()


def _notifier():
    # Imported here: oslo.messaging (kombu, amqp) costs memory that only processes which
    # publish need.
    import oslo_messaging  # noqa: PLC0415
    from oslo_config import cfg  # noqa: PLC0415

    # A ConfigOpts of our own: the global one belongs to keystonemiddleware in Keystone mode.
    conf = cfg.ConfigOpts()
    conf([], project="imageservice", default_config_files=[])
    oslo_messaging.set_transport_defaults(settings.CONTROL_EXCHANGE)
    transport = oslo_messaging.get_notification_transport(conf, url=transport_url())
    # A dead broker: with NOTIFICATION_RETRY attempts a second apart, a notification is given
    # up in seconds instead of after the driver's growing back-off.
    conf.set_override("rabbit_retry_interval", 1, group="oslo_messaging_rabbit")
    conf.set_override("rabbit_retry_backoff", 0, group="oslo_messaging_rabbit")
    return oslo_messaging.Notifier(
        transport,
        publisher_id=settings.DEFAULT_PUBLISHER_ID,
        driver=settings.NOTIFICATION_DRIVER,
        topics=settings.NOTIFICATION_TOPICS,
        retry=settings.NOTIFICATION_RETRY,
    )


_publisher: Publisher | None = None
_publisher_pid: int | None = None
_lock = threading.Lock()


def publisher() -> Publisher:
    """This process's publisher; a forked child starts its own (threads do not survive fork)."""
    global _publisher, _publisher_pid
    with _lock:
        if _publisher is None or _publisher_pid != os.getpid():
            _publisher, _publisher_pid = Publisher(), os.getpid()
        return _publisher
