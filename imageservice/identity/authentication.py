"""``X-Auth-Token`` authentication, the role keystonemiddleware plays in front of Glance."""

from __future__ import annotations

from urllib.parse import unquote

from rest_framework import authentication, exceptions

from imageservice.identity.credentials import Credentials
from imageservice.identity.models import ApiToken, hash_token


def user_for_token(raw_token: str):
    token = (
        ApiToken.objects.usable()
        .select_related("user")
        .filter(digest=hash_token(raw_token), user__is_active=True)
        .first()
    )
    return token.user if token is not None else None


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
        user = user_for_token(unquote(raw_token.strip()))
        if user is None:
            raise exceptions.AuthenticationFailed()
        service_user = self._service_user(request)
        request.credentials = Credentials.for_user(user, service_user)
        return user, raw_token

    def _service_user(self, request):
        raw_service_token = request.headers.get("X-Service-Token")
        if not raw_service_token:
            return None
        service_user = user_for_token(unquote(raw_service_token.strip()))
        if service_user is None or not service_user.is_service:
            raise exceptions.AuthenticationFailed()
        return service_user

    def authenticate_header(self, request):
        return 'Keystone uri="local"'
