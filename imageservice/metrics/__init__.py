"""The Prometheus metrics (docs/operator.md lists them).

Counters and histograms live here; the event stream feeds most of them
(``imageservice.metrics.subscriber``), the request middleware and the download path the rest,
and the figures read from the database (queue depth, stuck work, staging bytes) are computed
when ``/metrics`` is scraped (``imageservice.metrics.state``).

Several gunicorn workers and the job worker share one set of figures through
prometheus_client's multiprocess mode: ``PROMETHEUS_MULTIPROC_DIR`` names a directory, set in
the environment before any of them starts (``manage.py serve`` does, one per server under
``DATA_DIR/metrics``, emptied at start).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# Seconds: uploads and imports range from a tiny image to hours of a multi-GiB web download.
TRANSFER_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200)

HTTP_REQUESTS = Counter(
    "imageservice_http_requests",
    "HTTP requests answered, by route (URL pattern), method and status.",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "imageservice_http_request_duration_seconds",
    "Time to the response (its first byte for streamed downloads), by route and method.",
    ["route", "method"],
)
BYTES_IN = Counter(
    "imageservice_store_bytes_in",
    "Image bytes written into a store (or the staging area, store 'staging').",
    ["store"],
)
BYTES_OUT = Counter(
    "imageservice_store_bytes_out",
    "Image bytes sent to clients from a store.",
    ["store"],
)
UPLOADS = Counter(
    "imageservice_uploads",
    "Finished uploads (PUT /file: method 'file'; PUT /stage: 'stage'), by outcome.",
    ["method", "outcome"],
)
UPLOAD_DURATION = Histogram(
    "imageservice_upload_duration_seconds",
    "Duration of uploads and stagings, by method and outcome.",
    ["method", "outcome"],
    buckets=TRANSFER_BUCKETS,
)
IMPORTS = Counter(
    "imageservice_imports",
    "Finished import tasks by import method and outcome.",
    ["method", "outcome"],
)
IMPORT_DURATION = Histogram(
    "imageservice_import_duration_seconds",
    "Duration of import tasks from acceptance to their end, by method and outcome.",
    ["method", "outcome"],
    buckets=TRANSFER_BUCKETS,
)
EVENTS = Counter(
    "imageservice_events",
    "State changes of the event stream (the audit trail's actions), by action and outcome.",
    ["action", "outcome"],
)
NOTIFICATIONS_SENT = Counter(
    "imageservice_notifications_sent",
    "Glance notifications handed to the message bus, by event type.",
    ["event_type"],
)
NOTIFICATION_FAILURES = Counter(
    "imageservice_notification_failures",
    "Glance notifications lost: the bus refused or timed out ('send'), or the bounded queue "
    "was full ('queue_full').",
    ["reason"],
)
