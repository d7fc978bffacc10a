"""Projects, users, roles and API tokens: what Keystone gives Glance, kept in our database."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone

from imageservice.identity.tokens import forget_token, hash_token


def keystone_id() -> str:
    """Keystone-style identifier: 32 lower-case hex digits."""
    return uuid.uuid4().hex


class Project(models.Model):
    id = models.CharField(primary_key=True, max_length=64, default=keystone_id)
    name = models.CharField(max_length=255, unique=True)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Role(models.Model):
    name = models.CharField(max_length=255, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        # Keystone role names are compared case-insensitively by the policy engine.
        self.name = self.name.lower()
        super().save(*args, **kwargs)


class User(AbstractUser):
    """A caller of the API (and, with the admin role, of the operator console).

    ``is_service`` marks a service user: its token, sent as ``X-Service-Token`` beside a user's
    token, adds ``service_user_id``/``service_roles`` to the credentials the policy sees.
    """

    keystone_id = models.CharField(max_length=64, unique=True, default=keystone_id)
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.PROTECT, related_name="users"
    )
    roles = models.ManyToManyField(Role, blank=True, related_name="users")
    is_service = models.BooleanField(default=False)

    def role_names(self) -> frozenset[str]:
        return frozenset(self.roles.values_list("name", flat=True))


class TokenQuerySet(models.QuerySet):
    def usable(self, now: datetime | None = None) -> TokenQuerySet:
        now = now or timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )


class ApiToken(models.Model):
    """A bearer token for ``X-Auth-Token``. Only its SHA-256 digest is stored."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="tokens")
    digest = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=8, editable=False)
    description = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = TokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"

    @classmethod
    def issue(
        cls,
        user: User,
        *,
        raw_token: str | None = None,
        expires_at: datetime | None = None,
        description: str = "",
    ) -> tuple[ApiToken, str]:
        """Create a token and return it with its clear text, which is never stored."""
        raw_token = raw_token or secrets.token_urlsafe(32)
        token = cls.objects.create(
            user=user,
            digest=hash_token(raw_token),
            prefix=raw_token[:8],
            expires_at=expires_at,
            description=description,
        )
        return token, raw_token

    def revoke(self) -> bool:
        if self.revoked_at is not None:
            return False
        self.revoked_at = timezone.now()
        self.save(update_fields=["revoked_at"])
        forget_token(self.digest)
        return True
