"""Sends notifications from a thread of its own, so a slow or dead broker never holds up the
request that caused them.

Each process (gunicorn worker, job worker) starts its thread on its first notification, after
any fork. The queue is bounded (``NOTIFICATION_QUEUE_SIZE``): when the broker cannot keep up,
further notifications are dropped, logged and counted instead of piling up in memory. A send
gives up after ``NOTIFICATION_RETRY`` reconnection attempts, logged and counted.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
from dataclasses import dataclass

from django.conf import settings

from imageservice import metrics
from imageservice.notifications import transport_url

logger = logging.getLogger(__name__)
EXIT_FLUSH_SECONDS = 2
# oslo.messaging's notifier never raises: a send that failed is only logged, at ERROR, by
# these loggers, from the thread that sent it.
OSLO_NOTIFY_LOGGERS = ("oslo_messaging.notify.messaging", "oslo_messaging.notify.notifier")


class _SendFailures(logging.Handler):
    """Tells a publisher thread that oslo.messaging gave its last send up."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.state = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        self.state.failed = True

    def failed_since_reset(self) -> bool:
        failed = getattr(self.state, "failed", False)
        self.state.failed = False
        return failed


SEND_FAILURES = _SendFailures()
for _name in OSLO_NOTIFY_LOGGERS:
    logging.getLogger(_name).addHandler(SEND_FAILURES)


class NotSent(Exception):
    pass


@dataclass(frozen=True)
class Notification:
    priority: str  # "info" or "error", as Glance sends them
    event_type: str
    payload: object


@dataclass(frozen=True)
class Target:
    """Where and how to publish, read from the settings when the publisher starts."""

    url: str
    exchange: str
    topics: tuple[str, ...]
    driver: str
    publisher_id: str
    retry: int

    @classmethod
    def from_settings(cls) -> Target:
        return cls(
            url=transport_url(),
            exchange=settings.CONTROL_EXCHANGE,
            topics=tuple(settings.NOTIFICATION_TOPICS),
            driver=settings.NOTIFICATION_DRIVER,
            publisher_id=settings.DEFAULT_PUBLISHER_ID,
            retry=settings.NOTIFICATION_RETRY,
        )


class Publisher:
    def __init__(self, target: Target) -> None:
        self.target = target
        self.queue: queue.Queue[Notification] = queue.Queue(settings.NOTIFICATION_QUEUE_SIZE)
        self.thread = threading.Thread(target=self._run, name="notifications", daemon=True)
        self.thread.start()
        # A worker stopping (gunicorn recycling it, a deploy) sends what is queued first, for a
        # moment: a dead broker must not hold up the exit either.
        atexit.register(self.flush, EXIT_FLUSH_SECONDS)

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
        """Wait up to ``timeout`` seconds until every submitted notification was sent or given
        up; False if some were still waiting."""
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
                    notifier = _notifier(self.target)
                send = notifier.error if notification.priority == "error" else notifier.info
                SEND_FAILURES.failed_since_reset()
                send({}, notification.event_type, notification.payload)
                if SEND_FAILURES.failed_since_reset():
                    raise NotSent("the message bus refused it or could not be reached")
                metrics.NOTIFICATIONS_SENT.labels(event_type=notification.event_type).inc()
            except Exception as error:
                metrics.NOTIFICATION_FAILURES.labels(reason="send").inc()
                logger.warning("Notification %s not sent: %r", notification.event_type, error)
            finally:
                self.queue.task_done()


def _notifier(target: Target):
    # Imported here: oslo.messaging (kombu, amqp) costs memory that only processes which
    # publish need.
    import oslo_messaging  # noqa: PLC0415
    from oslo_config import cfg  # noqa: PLC0415

    # A ConfigOpts of our own: the global one belongs to keystonemiddleware in Keystone mode.
    conf = cfg.ConfigOpts()
    conf([], project="imageservice", default_config_files=[])
    with _lock:
        # The exchange is a process-wide default that the transport reads as it is made.
        oslo_messaging.set_transport_defaults(target.exchange)
        transport = oslo_messaging.get_notification_transport(conf, url=target.url)
    # A dead broker: with NOTIFICATION_RETRY attempts a second apart, a notification is given
    # up in seconds instead of after the driver's growing back-off.
    conf.set_override("rabbit_retry_interval", 1, group="oslo_messaging_rabbit")
    conf.set_override("rabbit_retry_backoff", 0, group="oslo_messaging_rabbit")
    return oslo_messaging.Notifier(
        transport,
        publisher_id=target.publisher_id,
        driver=target.driver,
        topics=list(target.topics),
        retry=target.retry,
    )


_publishers: dict[tuple, Publisher] = {}
_lock = threading.Lock()


def publisher() -> Publisher:
    """This process's publisher for the current settings; a forked child starts its own
    (threads do not survive fork)."""
    target = Target.from_settings()
    with _lock:
        key = (os.getpid(), target)
        if key not in _publishers:
            _publishers[key] = Publisher(target)
        return _publishers[key]
