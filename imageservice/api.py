"""The base of every Glance API view: body handling as Glance does it."""

from __future__ import annotations

import json

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from imageservice.errors import DECODING_ERROR, GlanceError, unstorable_text_error
from imageservice.policy.permissions import caller_is_admin, refuse

BODY_TRANSFER_ENCODINGS = {"chunked", "compress", "deflate", "gzip", "identity"}


def request_has_body(request) -> bool:
    """Glance's rule: a positive Content-Length, or a body-carrying Transfer-Encoding."""
    try:
        if int(request.META.get("CONTENT_LENGTH") or 0) > 0:
            return True
    except ValueError:
        return True
    encoding = request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
    return request.method in ("POST", "PUT", "PATCH") and encoding in BODY_TRANSFER_ENCODINGS


def no_content() -> HttpResponse:
    # No Content-Type claiming JSON: glanceclient would try to decode the empty body.
    response = HttpResponse(status=204)
    del response["Content-Type"]
    return response


class GlanceAPIView(APIView):
    """Thin views: authorise (the permission class), validate, call a service, serialise.

    Subclasses set ``policy_map`` (method → policy name) and, for views about one image,
    ``policy_object = True`` and fetch it with ``images.views.lookup.ImageLookupMixin``.
    """

    http_method_names = ["get", "post", "put", "patch", "delete"]
    policy_map: dict[str, str] = {}
    policy_object = False
    # Calls Glance declares body-less answer 400 when a body is sent (§2.2).
    bodyless_methods: tuple[str, ...] = ()

    def get_authenticators(self) -> list:
        # Read at request time rather than frozen into the class at import: the authentication
        # follows AUTH_STRATEGY (local tokens or keystonemiddleware's headers), also when tests
        # switch it.
        return [authenticator() for authenticator in api_settings.DEFAULT_AUTHENTICATION_CLASSES]

    @property
    def default_response_headers(self) -> dict[str, str]:
        # Glance sends neither Allow (except on 405) nor Vary on successful responses.
        return {}

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if request.method.lower() in self.bodyless_methods and request_has_body(request):
            raise GlanceError(400, "A body is not expected with this request.")

    @property
    def is_admin(self) -> bool:
        return caller_is_admin(self.request)

    def policy_target(self, request) -> dict[str, object]:
        return {"project_id": request.credentials.project_id}

    def policy_refusal(self, request, name: str) -> GlanceError:
        return refuse(name)

    def object_policy_target(self, request, obj) -> dict[str, object]:
        return obj.policy_target(request.credentials)

    def json_body(self, required: bool = True) -> object:
        """The request body as JSON, whatever the Content-Type says (as Glance)."""
        if not hasattr(self, "_json_body"):
            self._json_body = self._parse_json(required)
        return self._json_body

    def _parse_json(self, required: bool) -> object:
        try:
            raw = self.request.body if request_has_body(self.request) else b""
        except RequestDataTooBig:
            raise GlanceError(
                413,
                f"The request body is larger than {settings.MAX_REQUEST_BODY_SIZE} bytes.",
            ) from None
        if not raw:
            if required:
                raise GlanceError(400, "Body expected in request.")
            return None
        try:
            body = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise GlanceError(400, DECODING_ERROR) from None
        # RecursionError: a body nested deeper than the decoder's stack (`[` × 100,000).
        except (ValueError, RecursionError):
            raise GlanceError(400, "Malformed JSON in request body.") from None
        if not isinstance(body, dict | list):
            raise GlanceError(400, "Unexpected body type. Expected list/dict.")
        unstorable = unstorable_text_error(body)
        if unstorable:
            raise GlanceError(400, unstorable)
        return body
