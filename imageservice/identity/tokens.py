"""API token digests and the per-process cache of validated tokens.

This module imports no models, so the token model and the authentication class can both use it
without importing each other.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from django.utils import timezone

if TYPE_CHECKING:
    from imageservice.identity.credentials import Credentials
    from imageservice.identity.models import User


def hash_token(raw_token: str) -> str:
    # Tokens are 256-bit random strings, so a fast digest is enough: there is nothing to brute
    # force, and authentication stays a single indexed lookup.
    return hashlib.sha256(raw_token.encode()).hexdigest()


@dataclass(frozen=True)
class ValidatedToken:
    user: User
    credentials: Credentials
    expires_at: datetime | None
    cached_until: float


# Like keystonemiddleware's token cache: a validated token is trusted for TOKEN_CACHE_SECONDS
# in this process, so a request costs no identity query. Revoking in this process drops the
# entry at once; other processes notice within TOKEN_CACHE_SECONDS.
_validated: dict[str, ValidatedToken] = {}


def cached_token(digest: str) -> ValidatedToken | None:
    """The cached validation of ``digest`` while it is fresh and the token unexpired."""
    cached = _validated.get(digest)
    if cached is None:
        return None
    expired = cached.expires_at is not None and cached.expires_at <= timezone.now()
    if cached.cached_until <= time.monotonic() or expired:
        forget_token(digest)
        return None
    return cached


def remember_token(digest: str, validated: ValidatedToken) -> None:
    _validated[digest] = validated


def forget_token(digest: str) -> None:
    _validated.pop(digest, None)


def forget_all_tokens() -> None:
    """Drop every cached validation, so the next request of each token asks the database."""
    _validated.clear()
