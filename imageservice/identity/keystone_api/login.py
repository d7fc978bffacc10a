"""Logging in: who the caller is (password or token), which scope they get, the token issued.

Each user here belongs to one project in one domain ("Default"): that project plays the part of
Keystone's default project, so a login without a scope is scoped to it, as Keystone scopes a
user with a default project. ``"scope": "unscoped"`` gives a token without project and roles.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import unquote

from django.conf import settings
from django.utils import timezone

from imageservice.identity import lockout
from imageservice.identity.keystone_api.auth_request import AuthRequest, Ref
from imageservice.identity.keystone_api.errors import (
    AccountLocked,
    TokenNotFound,
    TooManyFailedLogins,
    Unauthorized,
)
from imageservice.identity.models import ApiToken, User
from imageservice.identity.tokens import hash_token

DEFAULT_DOMAIN = {"id": "default", "name": "Default"}


def usable_token(raw_token: str) -> ApiToken | None:
    """The unexpired, unrevoked token of an active user that ``raw_token`` is, if any."""
    # python-glanceclient percent-quotes header values; keystoneauth does not, and a token
    # never contains "%", so unquoting is safe for both.
    digest = hash_token(unquote(raw_token.strip()))
    tokens = ApiToken.objects.usable().select_related("user__project")
    return tokens.filter(digest=digest, user__is_active=True).first()


def log_in(auth: AuthRequest, address: str) -> tuple[ApiToken, str]:
    """Authenticate every method of ``auth``, then issue a token for the scope it asks.

    Raises a KeystoneError: Unauthorized (401) for wrong credentials or a scope the user does
    not hold, AccountLocked (401) or TooManyFailedLogins (429) past the lockout limits,
    TokenNotFound (404) for an unusable token in the token method, as Keystone answers.
    """
    user, methods, expires_at = _authenticate(auth, address)
    project_scoped = _project_scoped(user, auth.scope)
    return ApiToken.issue(
        user,
        expires_at=expires_at,
        methods=methods,
        project_scoped=project_scoped,
        description=f"login ({', '.join(methods)}) from {address}"[:255],
    )


def _authenticate(auth: AuthRequest, address: str) -> tuple[User, tuple[str, ...], datetime]:
    users, methods = set(), list(auth.methods)
    # Seconds are Keystone's precision for token times.
    expires_at = timezone.now().replace(microsecond=0)
    expires_at += timedelta(seconds=settings.TOKEN_EXPIRATION)
    if "password" in auth.methods:
        users.add(_password_user(auth.password_user, auth.password, address))
    if "token" in auth.methods:
        parent = usable_token(auth.token_id)
        if parent is None:
            raise TokenNotFound(auth.token_id)
        users.add(parent.user)
        methods += parent.method_names()
        # As in Keystone, a token made from a token expires with it: holding a token must not
        # be a way to stay logged in for ever without proving who you are again.
        if parent.expires_at is not None:
            expires_at = min(expires_at, parent.expires_at)
    if len(users) != 1:
        raise Unauthorized()
    return users.pop(), tuple(dict.fromkeys(methods)), expires_at


def _password_user(ref: Ref, password: str, address: str) -> User:
    blocked_for = lockout.address_blocked_for(address)
    if blocked_for:
        raise TooManyFailedLogins(blocked_for)
    user = _find_user(ref)
    if user is not None and lockout.account_locked_for(user):
        raise AccountLocked(user.keystone_id)
    if user is None:
        # Hash anyway, so an unknown name takes as long to refuse as a wrong password.
        User().set_password(password)
    elif user.check_password(password) and user.is_active:
        lockout.clear_failures(user)
        return user
    lockout.record_failure(user, address)
    raise Unauthorized()


def _find_user(ref: Ref) -> User | None:
    users = User.objects.select_related("project")
    if ref.id:
        return users.filter(keystone_id=ref.id).first()
    if not _is_default_domain(ref.domain):
        return None
    return users.filter(username=ref.name).first()


def _is_default_domain(ref: Ref | None) -> bool:
    return ref is not None and (
        ref.id == DEFAULT_DOMAIN["id"] if ref.id else ref.name == DEFAULT_DOMAIN["name"]
    )


def _project_scoped(user: User, scope: Ref | str | None) -> bool:
    has_project = user.project is not None and bool(user.role_names())
    if scope is None:
        return has_project
    if scope == "unscoped":
        return False
    if has_project and _names_project(scope, user):
        return True
    raise Unauthorized()


def _names_project(scope: Ref, user: User) -> bool:
    if scope.id:
        return scope.id == user.project_id
    return _is_default_domain(scope.domain) and scope.name == user.project.name
