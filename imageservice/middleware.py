"""Request ids as Glance sends them (``x-openstack-request-id: req-<uuid>``), URL checks."""

from __future__ import annotations

import re
import uuid
from urllib.parse import unquote_to_bytes

from imageservice.errors import DECODING_ERROR, NUL_ERROR, render_error
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


class UndecodableURLMiddleware:
    """A path or query string that is not UTF-8 answers 400, as Glance's decoding error; one
    holding a NUL answers 400 too (PostgreSQL would fail the query).

    Django would re-percent-encode such a path (``PUT /tags/%FF`` adding the tag ``%FF``) and
    replace the bytes in a query (``?name=%FF`` filtering on U+FFFD): wrong 2xx answers.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/v2"):
            error = _url_error(request)
            if error:
                return render_error(request, 400, error)
        return self.get_response(request)


def _url_error(request) -> str | None:
    # WSGI hands the raw query bytes over as latin-1.
    query = request.META.get("QUERY_STRING", "").encode("iso-8859-1", "replace")
    try:
        # By now Django has replaced PATH_INFO by its re-percent-encoded path, so the bytes
        # it could not decode show as %XX again. (A literal `%25FF` in a path, decoded by the
        # server to `%FF`, is refused too: the two cannot be told apart any more.)
        path = unquote_to_bytes(request.path_info).decode("utf-8")
        query_text = unquote_to_bytes(query).decode("utf-8")
    except UnicodeDecodeError:
        return DECODING_ERROR
    if "\x00" in path or "\x00" in query_text:
        return NUL_ERROR
    return None
