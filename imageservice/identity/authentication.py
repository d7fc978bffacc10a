"""``X-Auth-Token`` authentication, the role keystonemiddleware plays in front of Glance."""

from __future__ import annotations

import time
from urllib.parse import unquote

from django.conf import settings
from rest_framework import authentication, exceptions

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
