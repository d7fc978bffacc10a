"""Policy tests. The personas are policy credentials, mirroring the ones in tests/conftest.py."""

from __future__ import annotations

from imageservice.identity.credentials import Credentials

PROJECT_A = "a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0"
PROJECT_B = "b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1"
GLANCE_SERVICE_USER = "5e7f2b0c6a9d4e3f8b1c0d2e4f6a8b9c"

ADMIN = Credentials(
    user_id="admin-user", project_id=PROJECT_A, roles=frozenset({"admin", "member", "reader"})
)
OWNER = Credentials(
    user_id="owner-user", project_id=PROJECT_A, roles=frozenset({"member", "reader"})
)
OUTSIDER = Credentials(
    user_id="outsider-user", project_id=PROJECT_B, roles=frozenset({"member", "reader"})
)
READER = Credentials(user_id="reader-user", project_id=PROJECT_A, roles=frozenset({"reader"}))
SERVICE = Credentials(user_id="glance", project_id="service", roles=frozenset({"service"}))

PERSONAS = {"admin": ADMIN, "owner": OWNER, "outsider": OUTSIDER, "reader": READER}


def image_target(
    owner: str = PROJECT_A, visibility: str = "private", member_id: str | None = None, **extra
) -> dict[str, object]:
    """An image target shaped like the one images.models builds (internals §6.2)."""
    return {
        "id": "0d2e9a8c-5d7e-4c1b-9f3a-6b8c7d9e0f1a",
        "image_id": "0d2e9a8c-5d7e-4c1b-9f3a-6b8c7d9e0f1a",
        "project_id": owner,
        "owner": owner,
        "visibility": visibility,
        "member_id": member_id,
        "member": member_id,
        "status": "active",
        "protected": False,
        **extra,
    }
