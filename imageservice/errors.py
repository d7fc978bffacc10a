"""Error responses shaped exactly as Glance's (WebOb) ones, never DRF's ``{"detail": ...}``.

WebOb picks the representation from ``Accept`` against the offers ``text/html`` and
``application/json`` (first offer wins a tie) and falls back to plain text; python-glanceclient
sends ``*/*`` and parses the HTML, openstacksdk list calls send ``application/json``.
"""

from __future__ import annotations

import html
import json
import logging
import re
from http import HTTPStatus

from django.http import Http404, HttpRequest, HttpResponse
from rest_framework import exceptions as drf_exceptions

logger = logging.getLogger(__name__)

# WebOb's default explanations, used when a caller gives none.
DEFAULT_EXPLANATIONS = {
    400: "The server could not comply with the request since it is either malformed or "
    "otherwise incorrect.",
    401: "This server could not verify that you are authorized to access the document you "
    "requested. Either you supplied the wrong credentials (e.g., bad password), or your "
    "browser does not understand how to supply the credentials required.",
    403: "Access was denied to this resource.",
    404: "The resource could not be found.",
    405: "The method {method} is not allowed for this resource.",
    409: "There was a conflict when trying to complete your request.",
    413: "The request is larger than the server is willing or able to process.",
    415: "The request media type {content_type} is not supported by this server.",
    416: "The Range requested is not available.",
    431: "The request header fields were too large.",
    500: "The server has either erred or is incapable of performing the requested operation.",
    501: "The request method {method} is not implemented for this server.",
}

OFFERS = ("text/html", "application/json")

# Glance's words when the URL or the body cannot be decoded (its wsgi.Resource).
DECODING_ERROR = (
    "Error decoding your request. Either the URL or the request body contained characters "
    "that could not be decoded by Glance"
)
# Ours (Glance stores what its database takes): PostgreSQL text cannot hold U+0000.
NUL_ERROR = "Null characters are not allowed in the request."


class GlanceError(drf_exceptions.APIException):
    """An HTTP error with Glance's message; raise it from any view or service."""

    def __init__(
        self,
        status: int,
        message: str | None = None,
        *,
        detail: str = "",
        headers: dict[str, str] | None = None,
    ):
        self.status_code = status
        self.message = message
        self.extra_detail = detail
        self.headers = headers or {}
        super().__init__(message or "")


# Not Django's get_preferred_type(): it picks JSON for `application/json, */*` (WebOb: HTML, the
# first offer winning the tie), drops q=0 ranges and reads no Accept as */* (WebOb: plain text).
def _parse_accept(header: str) -> list[tuple[str, float]]:
    ranges = []
    for part in header.split(","):
        pieces = [piece.strip() for piece in part.split(";")]
        if not pieces[0]:
            continue
        quality = 1.0
        for param in pieces[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        ranges.append((pieces[0].lower(), quality))
    return ranges


def _quality(offer: str, ranges: list[tuple[str, float]]) -> float:
    offer_type, _, offer_sub = offer.partition("/")
    best_specificity, best_quality = -1, 0.0
    for media_range, quality in ranges:
        range_type, _, range_sub = media_range.partition("/")
        if media_range == "*/*" or media_range == "*":
            specificity = 0
        elif range_type == offer_type and range_sub == "*":
            specificity = 1
        elif range_type == offer_type and range_sub == offer_sub:
            specificity = 2
        else:
            continue
        if specificity > best_specificity:
            best_specificity, best_quality = specificity, quality
    return best_quality


def negotiate_error_type(accept: str | None) -> str:
    """The representation WebOb would choose: ``text/html``, ``application/json`` or plain."""
    if not accept or not accept.strip():
        return "text/plain"
    ranges = _parse_accept(accept)
    best_offer, best_quality = "text/plain", 0.0
    for offer in OFFERS:
        quality = _quality(offer, ranges)
        if quality > best_quality:
            best_offer, best_quality = offer, quality
    return best_offer


_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")


def _plain(body: str) -> str:
    body = body.replace("\n", " ").replace("\r", "")
    return _TAG.sub("", _BR.sub("\n", body))


def render_error(
    request: HttpRequest | None,
    status: int,
    message: str | None = None,
    *,
    detail: str = "",
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    """Build the error response Glance would send for ``status`` with ``message``."""
    method = request.method if request is not None else "GET"
    content_type = request.headers.get("Content-Type", "") if request is not None else ""
    explanation = message or DEFAULT_EXPLANATIONS.get(status, "").format(
        method=method, content_type=content_type.split(";")[0]
    )
    status_line = f"{status} {HTTPStatus(status).phrase}"
    accept = request.headers.get("Accept") if request is not None else None
    kind = negotiate_error_type(accept)
    webob_body = f"{explanation}<br /><br />\n{detail}\n\n"
    if kind == "application/json":
        body = json.dumps(
            {
                "message": webob_body,
                "code": status_line,
                "title": HTTPStatus(status).phrase,
            }
        )
        response = HttpResponse(body, status=status, content_type="application/json")
    elif kind == "text/html":
        inner = f"{html.escape(explanation)}<br /><br />\n{html.escape(detail)}\n\n"
        body = (
            f"<html>\n <head>\n  <title>{status_line}</title>\n </head>\n <body>\n"
            f"  <h1>{status_line}</h1>\n  {inner}\n </body>\n</html>"
        )
        response = HttpResponse(body, status=status, content_type="text/html; charset=UTF-8")
    else:
        body = f"{status_line}\n\n{_plain(webob_body)}"
        response = HttpResponse(body, status=status, content_type="text/plain; charset=UTF-8")
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _status_and_message(exc: Exception) -> tuple[int, str | None, dict[str, str]]:
    if isinstance(exc, GlanceError):
        return exc.status_code, exc.message, exc.headers
    if isinstance(exc, Http404):
        return 404, None, {}
    if isinstance(exc, drf_exceptions.NotAuthenticated | drf_exceptions.AuthenticationFailed):
        return 401, None, {}
    if isinstance(exc, drf_exceptions.MethodNotAllowed):
        return 405, None, {}
    if isinstance(exc, drf_exceptions.PermissionDenied):
        return 403, None, {}
    if isinstance(exc, drf_exceptions.UnsupportedMediaType):
        return 415, None, {}
    if isinstance(exc, drf_exceptions.APIException):
        return exc.status_code, str(exc.detail), {}
    return 500, None, {}


def glance_exception_handler(exc: Exception, context: dict) -> HttpResponse:
    """DRF exception handler: every API error leaves in Glance's shape."""
    # Imported here: DRF loads the permission classes (which raise GlanceError) from views.py.
    from rest_framework.views import set_rollback  # noqa: PLC0415

    request = context.get("request")
    status, message, headers = _status_and_message(exc)
    if status == 500:
        logger.exception("Unhandled error", exc_info=exc)
    auth_header = getattr(exc, "auth_header", None)
    if status == 401 and auth_header:
        # Set by DRF from the authentication class: where to get a token, as
        # keystonemiddleware says it (`Keystone uri="..."`).
        headers = {**headers, "WWW-Authenticate": auth_header}
    if status == 405 and "Allow" not in headers:
        # A view that refuses a method it defines (DELETE of a task) names what it allows.
        view = context.get("view")
        if view is not None:
            headers = {**headers, "Allow": ", ".join(allowed_methods(view))}
    set_rollback()
    detail = exc.extra_detail if isinstance(exc, GlanceError) else ""
    return render_error(request, status, message, detail=detail, headers=headers)


def allowed_methods(view) -> list[str]:
    return [method.upper() for method in view.http_method_names if hasattr(view, method)]


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render_error(request, 404)


def handler500(request: HttpRequest) -> HttpResponse:
    return render_error(request, 500)
