"""Creating projects, users and tokens: one path for commands, the seed, the admin and tests."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from imageservice.identity import lockout
from imageservice.identity.models import ApiToken, Project, Role, User
from imageservice.identity.tokens import hash_token

STANDARD_ROLES = ("admin", "member", "reader")


def ensure_project(name: str, description: str = "") -> tuple[Project, bool]:
    return Project.objects.get_or_create(name=name, defaults={"description": description})


def ensure_roles(names: Iterable[str]) -> list[Role]:
    return [Role.objects.get_or_create(name=name.strip().lower())[0] for name in names]


@transaction.atomic
def ensure_user(
    username: str,
    project: Project | None,
    roles: Iterable[str],
    *,
    is_service: bool = False,
    password: str | None = None,
) -> tuple[User, bool]:
    """Create the user, or bring an existing one to the given project and roles."""
    user, created = User.objects.get_or_create(username=username)
    user.project = project
    user.is_service = is_service
    user.is_staff = "admin" in {role.lower() for role in roles}
    if password is not None:
        user.set_password(password)
    elif created:
        user.set_unusable_password()
    user.save()
    user.roles.set(ensure_roles(roles))
    return user, created


def set_password(user: User, password: str) -> int:
    """Give ``user`` a new password (stored with Django's password hashers) and unlock the
    account: returns how many recorded failed logins were forgotten."""
    user.set_password(password)
    user.save(update_fields=["password"])
    return lockout.clear_failures(user)


def issue_token(
    user: User,
    *,
    raw_token: str | None = None,
    expires_at: datetime | None = None,
    description: str = "",
) -> tuple[ApiToken, str]:
    """A new token for ``user`` and its clear text (shown once). A fixed ``raw_token`` that
    already exists is returned as it is, so seeding stays idempotent."""
    if raw_token is not None:
        existing = ApiToken.objects.filter(digest=hash_token(raw_token)).first()
        if existing is not None:
            if existing.user_id != user.pk:
                raise ValueError("That token already belongs to another user.")
            return existing, raw_token
    return ApiToken.issue(user, raw_token=raw_token, expires_at=expires_at, description=description)


CONSOLE_TOKEN_DESCRIPTION = "console: Add image page"


def issue_console_token(user: User) -> tuple[ApiToken, str]:
    """A token for the console's own pages to call the Image API as the signed-in operator,
    valid for ``CONSOLE_TOKEN_SECONDS``.

    The "Add image" page sends the image's metadata and data through the API itself (its
    views, services and policy are the only write path); the API takes tokens, not sessions.
    """
    expires_at = timezone.now() + timedelta(seconds=settings.CONSOLE_TOKEN_SECONDS)
    return ApiToken.issue(user, expires_at=expires_at, description=CONSOLE_TOKEN_DESCRIPTION)
