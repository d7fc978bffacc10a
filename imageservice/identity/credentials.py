"""The request context the policy engine sees, like oslo.context's policy values."""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Credentials:
    user_id: str | None = None
    project_id: str | None = None
    roles: frozenset[str] = field(default_factory=frozenset)
    service_user_id: str | None = None
    service_project_id: str | None = None
    service_roles: frozenset[str] = field(default_factory=frozenset)

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

    def as_policy_dict(self) -> dict[str, object]:
        """Credential keys as oslo.policy names them (``roles`` and ``service_roles`` lists)."""
        return {
            "user_id": self.user_id,
            "project_id": self.project_id,
            "roles": sorted(self.roles),
            "service_user_id": self.service_user_id,
            "service_project_id": self.service_project_id,
            "service_roles": sorted(self.service_roles),
        }
