"""Request ids as Glance sends them (``x-openstack-request-id: req-<uuid>``)."""

from __future__ import annotations

import re
import uuid

from imageservice.errors import render_error
from imageservice.versions import advertised_versions

MAX_REQUEST_ID_LENGTH = 64


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith("/v2"):
            return self.get_response(request)
        incoming = request.headers.get("X-OpenStack-Request-ID", "").strip()
        if len(incoming) > MAX_REQUEST_ID_LENGTH:
            return render_error(request, 431)
        if incoming and not incoming.startswith("req-"):
            incoming = f"req-{incoming}"
        request.request_id = incoming or f"req-{uuid.uuid4()}"
        response = self.get_response(request)
        response["x-openstack-request-id"] = request.request_id
        return response


MINOR_VERSION_PATH = re.compile(r"^/v(2\.\d+)(/.*)$")


class VersionAliasMiddleware:
    """``/v2.N/...`` is an alias of ``/v2/...`` for every advertised minor version."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        match = MINOR_VERSION_PATH.match(request.path_info)
        if match and match.group(1) in advertised_versions():
            request.path_info = f"/v2{match.group(2)}"
            request.path = request.path_info
        return self.get_response(request)
