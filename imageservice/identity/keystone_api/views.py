"""``/identity/v3/auth/tokens``: log in (POST), validate (GET, HEAD) and revoke (DELETE).

Plain Django views, not DRF ones: these calls carry their own credentials, so neither the
X-Auth-Token authentication of the image API nor the Glance policy applies to them. Who may
validate or revoke a token follows Keystone's default policy: its own user, an admin, and for
GET a service user.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from imageservice.identity.keystone_api.auth_request import parse_auth_request
from imageservice.identity.keystone_api.errors import (
    Forbidden,
    KeystoneError,
    NotFound,
    TokenNotFound,
    Unauthorized,
    error_response,
)
from imageservice.identity.keystone_api.login import log_in, usable_token
from imageservice.identity.keystone_api.token_body import token_body
from imageservice.identity.models import ApiToken

UNKNOWN_ADDRESS = "0.0.0.0"


def client_address(request: HttpRequest) -> str:
    # The peer's address: behind a proxy that is the proxy's (docs/identity.md).
    return request.META.get("REMOTE_ADDR") or UNKNOWN_ADDRESS


def may_act_on(caller: ApiToken, subject: ApiToken, *, as_service: bool = False) -> bool:
    """Keystone's token policy: the token's own user, an admin, and (``as_service``) a
    service; roles count only on a project-scoped token, as in Keystone."""
    if caller.user_id == subject.user_id:
        return True
    roles = caller.user.role_names() if caller.project_scoped else frozenset()
    return "admin" in roles or (as_service and ("service" in roles or caller.user.is_service))


@csrf_exempt
def not_found(request: HttpRequest) -> HttpResponse:
    """Any other identity path: only the login calls of Keystone's API are served here."""
    return error_response(request, NotFound())


@method_decorator(csrf_exempt, name="dispatch")
class AuthTokensView(View):
    http_method_names = ["post", "get", "head", "delete"]

    def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            response = super().dispatch(request, *args, **kwargs)
        except KeystoneError as error:
            response = error_response(request, error)
        response["Vary"] = "X-Auth-Token"
        return response

    def post(self, request: HttpRequest) -> HttpResponse:
        token, raw_token = log_in(parse_auth_request(request.body), client_address(request))
        body = token_body(token, request, include_catalog="nocatalog" not in request.GET)
        response = JsonResponse(body, status=201)
        response["X-Subject-Token"] = raw_token
        return response

    def get(self, request: HttpRequest) -> HttpResponse:
        subject, raw_subject = self._subject(request, "identity:validate_token", as_service=True)
        body = token_body(subject, request, include_catalog="nocatalog" not in request.GET)
        response = JsonResponse(body)
        response["X-Subject-Token"] = raw_subject
        return response

    def head(self, request: HttpRequest) -> HttpResponse:
        _, raw_subject = self._subject(request, "identity:check_token")
        response = HttpResponse(status=200, content_type="application/json")
        response["X-Subject-Token"] = raw_subject
        return response

    def delete(self, request: HttpRequest) -> HttpResponse:
        subject, _ = self._subject(request, "identity:revoke_token")
        # revoke() also drops the token from this process's cache: refused here at once.
        subject.revoke()
        return HttpResponse(status=204)

    def _subject(
        self, request: HttpRequest, action: str, *, as_service: bool = False
    ) -> tuple[ApiToken, str]:
        caller = usable_token(request.headers.get("X-Auth-Token", ""))
        if caller is None:
            raise Unauthorized()
        raw_subject = request.headers.get("X-Subject-Token", "")
        if not raw_subject.strip():
            raise TokenNotFound()
        subject = usable_token(raw_subject)
        if subject is None:
            raise TokenNotFound(raw_subject)
        if not may_act_on(caller, subject, as_service=as_service):
            raise Forbidden(action)
        return subject, raw_subject
