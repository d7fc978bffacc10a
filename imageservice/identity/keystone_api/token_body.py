"""The token document of ``POST`` and ``GET /v3/auth/tokens``, as Keystone renders it."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from django.http import HttpRequest

from imageservice.identity.keystone_api.catalog import service_catalog
from imageservice.identity.keystone_api.login import DEFAULT_DOMAIN
from imageservice.identity.models import ApiToken

# A token issued without an expiry (issue_token without --expires-in) has none to show, but
# every client parses expires_at as a time.
NEVER = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


def keystone_time(at: datetime) -> str:
    """Keystone's token times: UTC, whole seconds, six zero sub-second digits and a Z."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000000Z")


def audit_id(token: ApiToken) -> str:
    # Keystone's audit ids are 22 url-safe characters that name a token without being it;
    # the digest's first 16 bytes do the same here without another column.
    return base64.urlsafe_b64encode(bytes.fromhex(token.digest)[:16]).decode().rstrip("=")


def token_body(token: ApiToken, request: HttpRequest, *, include_catalog: bool = True) -> dict:
    user = token.user
    body = {
        "methods": token.method_names(),
        "user": {
            "id": user.keystone_id,
            "name": user.username,
            "domain": DEFAULT_DOMAIN,
            "password_expires_at": None,
        },
        "audit_ids": [audit_id(token)],
        "expires_at": keystone_time(token.expires_at or NEVER),
        "issued_at": keystone_time(token.created_at),
    }
    if token.project_scoped and user.project is not None:
        body.update(_project_scope(token))
        if include_catalog:
            body["catalog"] = service_catalog(request)
    return {"token": body}


def _project_scope(token: ApiToken) -> dict:
    project = token.user.project
    return {
        "project": {"id": project.id, "name": project.name, "domain": DEFAULT_DOMAIN},
        "is_domain": False,
        "roles": [{"id": str(role.pk), "name": role.name} for role in token.user.roles.all()],
    }
