"""The request context the policy engine sees, like oslo.context's policy values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

# Keystone mode: set in the WSGI environ only on the way through keystonemiddleware
# (identity.keystone_wsgi). A client cannot put a key without the HTTP_ prefix there, so its
# presence proves the identity headers are the middleware's, even if the Django application
# were served without the wrapper.
VALIDATED_ENVIRON_KEY = "imageservice.keystone_validated"


@dataclass(frozen=True)
class Credentials:
    user_id: str | None = None
    project_id: str | None = None
    roles: frozenset[str] = field(default_factory=frozenset)
    service_user_id: str | None = None
    service_project_id: str | None = None
    service_roles: frozenset[str] = field(default_factory=frozenset)
    # Keystone mode only; local users have no domains. oslo.context's default for the flag is
    # true as well: a deployment without `admin_project_name` has no non-admin projects.
    user_domain_id: str | None = None
    project_domain_id: str | None = None
    domain_id: str | None = None
    is_admin_project: bool = True
    service_user_domain_id: str | None = None
    service_project_domain_id: str | None = None

    @classmethod
    def for_user(cls, user, service_user=None) -> Credentials:
        service = {}
        if service_user is not None:
            service = {
                "service_user_id": service_user.keystone_id,
                "service_project_id": service_user.project_id,
                "service_roles": service_user.role_names(),
            }
        return cls(
            user_id=user.keystone_id,
            project_id=user.project_id,
            roles=user.role_names(),
            **service,
        )

    def with_service(self, service: Credentials) -> Credentials:
        """These credentials with ``service``'s user, project and roles as the service ones."""
        return replace(
            self,
            service_user_id=service.user_id,
            service_project_id=service.project_id,
            service_roles=service.roles,
        )

    @classmethod
    def from_keystone_headers(cls, meta: Mapping[str, str]) -> Credentials:
        """From the headers keystonemiddleware set on a confirmed request (WSGI names).

        Roles are lower-cased as Glance does. The service values are taken only when the
        middleware confirmed a service token; otherwise they stay empty.
        """
        service = {}
        if meta.get("HTTP_X_SERVICE_IDENTITY_STATUS") == "Confirmed":
            service = {
                "service_user_id": meta.get("HTTP_X_SERVICE_USER_ID") or None,
                "service_project_id": meta.get("HTTP_X_SERVICE_PROJECT_ID") or None,
                "service_roles": _roles(meta.get("HTTP_X_SERVICE_ROLES", "")),
                "service_user_domain_id": meta.get("HTTP_X_SERVICE_USER_DOMAIN_ID") or None,
                "service_project_domain_id": meta.get("HTTP_X_SERVICE_PROJECT_DOMAIN_ID") or None,
            }
        return cls(
            user_id=meta.get("HTTP_X_USER_ID") or None,
            project_id=meta.get("HTTP_X_PROJECT_ID") or None,
            roles=_roles(meta.get("HTTP_X_ROLES", "")),
            user_domain_id=meta.get("HTTP_X_USER_DOMAIN_ID") or None,
            project_domain_id=meta.get("HTTP_X_PROJECT_DOMAIN_ID") or None,
            domain_id=meta.get("HTTP_X_DOMAIN_ID") or None,
            is_admin_project=meta.get("HTTP_X_IS_ADMIN_PROJECT", "True").lower() == "true",
            **service,
        )

    def as_policy_dict(self) -> dict[str, object]:
        """Credential keys as oslo.policy names them (``roles`` and ``service_roles`` lists)."""
        return {
            "user_id": self.user_id,
            "project_id": self.project_id,
            "roles": sorted(self.roles),
            "service_user_id": self.service_user_id,
            "service_project_id": self.service_project_id,
            "service_roles": sorted(self.service_roles),
            "user_domain_id": self.user_domain_id,
            "project_domain_id": self.project_domain_id,
            "domain_id": self.domain_id,
            "is_admin_project": self.is_admin_project,
            "service_user_domain_id": self.service_user_domain_id,
            "service_project_domain_id": self.service_project_domain_id,
        }


def _roles(header: str) -> frozenset[str]:
    return frozenset(role.strip().lower() for role in header.split(",") if role.strip())
