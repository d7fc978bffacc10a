"""Counts every request by route (its URL pattern, never the raw path: image ids would make
one series per image) and status, with its latency."""

from __future__ import annotations

import time

from imageservice import metrics

# Anything else is counted as "other": a client must not create series at will.
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


class RequestMetricsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.monotonic()
        response = self.get_response(request)
        route = route_of(request)
        method = request.method if request.method in METHODS else "other"
        metrics.HTTP_LATENCY.labels(route=route, method=method).observe(time.monotonic() - started)
        metrics.HTTP_REQUESTS.labels(
            route=route, method=method, status=str(response.status_code)
        ).inc()
        return response


def route_of(request) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "unmatched"
    return match.url_name or match.route or "unmatched"
