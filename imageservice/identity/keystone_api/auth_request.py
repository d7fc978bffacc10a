"""The body of ``POST /v3/auth/tokens``, read into plain values.

``{"auth": {"identity": {"methods": [...], "password": {...}, "token": {...}}, "scope": ...}}``
as keystoneauth sends it. A malformed body is a 400; who the caller is gets decided later.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from imageservice.errors import unstorable_text_error
from imageservice.identity.keystone_api.errors import UnsupportedMethod, ValidationError

SUPPORTED_METHODS = ("password", "token")


@dataclass(frozen=True)
class Ref:
    """An object named by ``id`` or by ``name`` (within ``domain`` for users and projects)."""

    id: str | None = None
    name: str | None = None
    domain: Ref | None = None


@dataclass(frozen=True)
class AuthRequest:
    methods: tuple[str, ...]
    password_user: Ref | None = None
    password: str = ""
    token_id: str | None = None
    # The project asked for, "unscoped" when asked explicitly, None when no scope was given.
    scope: Ref | str | None = None


def parse_auth_request(raw_body: bytes) -> AuthRequest:
    try:
        body = json.loads(raw_body or b"null")
    # RecursionError: a body nested deeper than the decoder's stack (`[` × 100,000).
    except (ValueError, RecursionError):
        raise ValidationError("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ValidationError("The request body must be a JSON object.")
    # A lone surrogate or a NUL in a name would fail the user lookup in the database.
    unstorable = unstorable_text_error(body)
    if unstorable:
        raise ValidationError(unstorable)
    auth = _object(body, "auth", "the request body")
    identity = _object(auth, "identity", "auth")
    methods = _methods(identity)
    request = {"methods": methods, "scope": _scope(auth)}
    if "password" in methods:
        user = _object(_object(identity, "password", "identity"), "user", "password")
        request["password_user"] = _ref(user, "password.user", with_domain=True)
        request["password"] = _string(user, "password", "password.user", required=False) or ""
    if "token" in methods:
        token = _object(identity, "token", "identity")
        request["token_id"] = _string(token, "id", "token")
    return AuthRequest(**request)


def _methods(identity: dict) -> tuple[str, ...]:
    methods = identity.get("methods")
    if not isinstance(methods, list) or not methods:
        raise ValidationError("identity.methods must be a non-empty list of method names.")
    if not all(isinstance(method, str) for method in methods):
        raise ValidationError("identity.methods must be a non-empty list of method names.")
    if any(method not in SUPPORTED_METHODS for method in methods):
        raise UnsupportedMethod()
    return tuple(dict.fromkeys(methods))


def _scope(auth: dict) -> Ref | str | None:
    scope = auth.get("scope")
    if scope is None or scope == "unscoped":
        return scope
    if not isinstance(scope, dict):
        raise ValidationError('scope must be an object or "unscoped".')
    if "project" not in scope:
        # Domain, system and trust scopes name nothing this service has; as Keystone does for
        # a scope the user holds no role on, the login is refused (401) once it is known who
        # asks, so the caller learns nothing before proving who they are.
        return Ref()
    return _ref(_object(scope, "project", "scope"), "scope.project", with_domain=True)


def _ref(value: dict, where: str, *, with_domain: bool) -> Ref:
    ref_id = _string(value, "id", where, required=False)
    name = _string(value, "name", where, required=False)
    if not ref_id and not name:
        raise ValidationError(f"{where} needs an id or a name.")
    if not name:
        return Ref(id=ref_id)
    # As in Keystone, a name wins over an id given beside it.
    if not with_domain:
        return Ref(name=name)
    if "domain" not in value:
        raise ValidationError(f"{where} is named, so it needs a domain (id or name).")
    domain = _ref(_object(value, "domain", where), f"{where}.domain", with_domain=False)
    return Ref(name=name, domain=domain)


def _object(parent: dict, key: str, where: str) -> dict:
    value = parent.get(key)
    if not isinstance(value, dict):
        raise ValidationError(f"{where} needs an object {key!r}.")
    return value


def _string(parent: dict, key: str, where: str, *, required: bool = True) -> str | None:
    value = parent.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        raise ValidationError(f"{where}.{key} must be a string.")
    return value
