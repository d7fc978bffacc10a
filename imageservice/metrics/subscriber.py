"""The events → Prometheus counters subscriber: the same events the audit trail records."""

from __future__ import annotations

from imageservice import metrics
from imageservice.events import SUCCESS, Event


def count(event: Event) -> None:
    metrics.EVENTS.labels(action=event.action, outcome=event.outcome).inc()
    facts = event.facts
    if event.outcome == SUCCESS:
        for store in facts.get("stores", ()):
            metrics.BYTES_IN.labels(store=store).inc(facts.get("bytes") or 0)
    if facts.get("upload"):
        labels = {"method": facts["method"], "outcome": event.outcome}
        metrics.UPLOADS.labels(**labels).inc()
        metrics.UPLOAD_DURATION.labels(**labels).observe(facts.get("seconds") or 0)
    if event.action in ("task.success", "task.failure") and facts.get("method"):
        labels = {"method": facts["method"], "outcome": event.outcome}
        metrics.IMPORTS.labels(**labels).inc()
        metrics.IMPORT_DURATION.labels(**labels).observe(facts.get("seconds") or 0)
