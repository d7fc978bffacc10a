"""Projects, users, roles and API tokens: what Keystone gives Glance, kept in our database."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone

from imageservice.identity.credentials import Credentials
from imageservice.identity.tokens import forget_token, hash_token


def keystone_id() -> str:
    """Keystone-style identifier: 32 lower-case hex digits."""
    return uuid.uuid4().hex


def new_raw_token() -> str:
    """256 random bits, url-safe, never starting with "-": a command line (``openstack token
    revoke``, ``glance --os-auth-token``) would take such a token for an option."""
    raw_token = secrets.token_urlsafe(32)
    while raw_token.startswith("-"):
        raw_token = secrets.token_urlsafe(32)
    return raw_token


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
    # Set for tokens issued by the embedded Keystone login: how the holder proved who they are
    # (Keystone's "methods"), and whether the token carries their project. As in Keystone, an
    # unscoped token carries neither a project nor roles.
    methods = models.CharField(max_length=64, blank=True, editable=False)
    project_scoped = models.BooleanField(default=True, editable=False)

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
        methods: tuple[str, ...] = (),
        project_scoped: bool = True,
    ) -> tuple[ApiToken, str]:
        """Create a token and return it with its clear text, which is never stored."""
        raw_token = raw_token or new_raw_token()
        token = cls.objects.create(
            user=user,
            digest=hash_token(raw_token),
            prefix=raw_token[:8],
            created_at=timezone.now(),
            expires_at=expires_at,
            description=description,
            methods=",".join(methods),
            project_scoped=project_scoped,
        )
        return token, raw_token

    def method_names(self) -> list[str]:
        """Keystone's ``methods``. A token issued by a command or the console was never a login;
        it is a bearer token, so "token" describes it."""
        return self.methods.split(",") if self.methods else ["token"]

    def credentials(self) -> Credentials:
        """What the policy sees for a request carrying this token."""
        if not self.project_scoped:
            return Credentials(user_id=self.user.keystone_id)
        return Credentials.for_user(self.user)

    def revoke(self) -> bool:
        if self.revoked_at is not None:
            return False
        self.revoked_at = timezone.now()
        self.save(update_fields=["revoked_at"])
        forget_token(self.digest)
        return True


class LoginFailure(models.Model):
    """One refused password login, kept for LOCKOUT_DURATION to throttle guessing.

    ``user`` is the account the caller named (null when no such account exists); ``address`` is
    the client address the request came from.
    """

    user = models.ForeignKey(
        User, null=True, on_delete=models.CASCADE, related_name="login_failures"
    )
    address = models.GenericIPAddressField()
    at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        indexes = [
            models.Index(fields=["user", "at"], name="loginfailure_user_at"),
            models.Index(fields=["address", "at"], name="loginfailure_address_at"),
        ]

    def __str__(self) -> str:
        return f"failed login of {self.user or 'an unknown user'} from {self.address}"
