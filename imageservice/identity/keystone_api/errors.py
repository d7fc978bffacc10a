"""Errors in Keystone's shape: ``{"error": {"code": 401, "title": "Unauthorized", "message": …}}``.

Keystone hides why an authentication failed (unknown user, wrong password, no access to the
project) behind one message; so do we, so a caller cannot tell which part was wrong.
"""

from __future__ import annotations

from http import HTTPStatus

from django.http import HttpRequest, JsonResponse

from imageservice.identity.keystone_api.catalog import identity_v3_url


class KeystoneError(Exception):
    """An error answered with ``code`` and ``message``; raise it from the login workflow."""

    code = 500
    message = "The server could not complete the request."

    def __init__(self, message: str | None = None, *, headers: dict[str, str] | None = None):
        super().__init__(message or self.message)
        self.message = message or self.message
        self.headers = headers or {}

    def body(self) -> dict[str, object]:
        title = HTTPStatus(self.code).phrase
        return {"error": {"code": self.code, "title": title, "message": self.message}}


class ValidationError(KeystoneError):
    code = 400
    message = "The request body is not a valid authentication request."


class Unauthorized(KeystoneError):
    code = 401
    message = "The request you have made requires authentication."


class AccountLocked(Unauthorized):
    def __init__(self, user_id: str):
        super().__init__(f"The account is locked for user: {user_id}.")


class UnsupportedMethod(Unauthorized):
    message = "Attempted to authenticate with an unsupported method."

    def body(self) -> dict[str, object]:
        body = super().body()
        # keystoneauth reads the methods the server would take from here.
        body["error"]["identity"] = {"methods": ["password", "token"]}
        return body


class Forbidden(KeystoneError):
    code = 403

    def __init__(self, action: str):
        super().__init__(f"You are not authorized to perform the requested action: {action}.")


class NotFound(KeystoneError):
    code = 404
    message = "The resource could not be found."


class TokenNotFound(NotFound):
    def __init__(self, token_id: str = ""):
        message = f"Could not find token: {token_id}." if token_id else "No token in the request"
        super().__init__(message)


class TooManyFailedLogins(KeystoneError):
    code = 429

    def __init__(self, retry_after: int):
        super().__init__(
            f"Too many failed logins from this address; try again in {retry_after} seconds.",
            headers={"Retry-After": str(retry_after)},
        )


def error_response(request: HttpRequest, error: KeystoneError) -> JsonResponse:
    response = JsonResponse(error.body(), status=error.code)
    for name, value in error.headers.items():
        response[name] = value
    if isinstance(error, Unauthorized):
        # As Keystone: the 401 says where to authenticate.
        response["WWW-Authenticate"] = f'Keystone uri="{identity_v3_url(request)}"'
    return response
