"""API authentication: local ``X-Auth-Token`` tokens (the role keystonemiddleware plays in
front of Glance), or in Keystone mode the identity keystonemiddleware itself confirmed."""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import unquote

from django.conf import settings
from rest_framework import authentication, exceptions

from imageservice.events.context import bind_credentials
from imageservice.identity.credentials import VALIDATED_ENVIRON_KEY, Credentials
from imageservice.identity.models import ApiToken
from imageservice.identity.tokens import (
    ValidatedToken,
    cached_token,
    hash_token,
    remember_token,
)


def validate_token(raw_token: str) -> ValidatedToken | None:
    digest = hash_token(raw_token)
    cached = cached_token(digest)
    if cached is not None:
        return cached
    token = (
        ApiToken.objects.usable()
        .select_related("user")
        .filter(digest=digest, user__is_active=True)
        .first()
    )
    if token is None:
        return None
    validated = ValidatedToken(
        user=token.user,
        credentials=token.credentials(),
        expires_at=token.expires_at,
        cached_until=time.monotonic() + settings.TOKEN_CACHE_SECONDS,
    )
    if settings.TOKEN_CACHE_SECONDS > 0:
        remember_token(digest, validated)
    return validated


class TokenAuthentication(authentication.BaseAuthentication):
    """Resolve the token to a user and attach the policy credentials to the request.

    A missing token leaves the request anonymous (the permission class answers 401); a token
    that is unknown, expired or revoked is refused here with 401.
    """

    def authenticate(self, request):
        raw_token = request.headers.get("X-Auth-Token")
        if not raw_token:
            return None
        # python-glanceclient percent-quotes header values.
        validated = validate_token(unquote(raw_token.strip()))
        if validated is None:
            raise exceptions.AuthenticationFailed()
        request.credentials = validated.credentials
        service = self._service_token(request)
        if service is not None:
            request.credentials = validated.credentials.with_service(service.credentials)
        bind_credentials(request.credentials)
        return validated.user, raw_token

    def _service_token(self, request) -> ValidatedToken | None:
        raw_service_token = request.headers.get("X-Service-Token")
        if not raw_service_token:
            return None
        service = validate_token(unquote(raw_service_token.strip()))
        if service is None or not service.user.is_service:
            raise exceptions.AuthenticationFailed()
        return service

    def authenticate_header(self, request):
        return 'Keystone uri="local"'


@dataclass(frozen=True)
class KeystoneCaller:
    """``request.user`` in Keystone mode: the token's user, who has no row of ours."""

    user_id: str | None
    username: str
    is_authenticated: bool = True


class KeystoneAuthentication(authentication.BaseAuthentication):
    """Credentials from the headers keystonemiddleware set (Keystone mode).

    Only a request that came through the middleware counts (it removed any identity headers
    the client sent and set its own); anything else, and any status but ``Confirmed``
    (``delay_auth_decision``), is refused with 401 and Keystone's ``WWW-Authenticate``.
    """

    def authenticate(self, request):
        meta = request.META
        if not meta.get(VALIDATED_ENVIRON_KEY) or meta.get("HTTP_X_IDENTITY_STATUS") != "Confirmed":
            raise exceptions.AuthenticationFailed()
        request.credentials = Credentials.from_keystone_headers(meta)
        bind_credentials(request.credentials)
        caller = KeystoneCaller(request.credentials.user_id, meta.get("HTTP_X_USER_NAME", ""))
        return caller, None

    def authenticate_header(self, request):
        uri = settings.KEYSTONE_AUTHTOKEN.get("www_authenticate_uri", "")
        return f'Keystone uri="{uri}"'
