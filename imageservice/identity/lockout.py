"""Throttling password guesses: per account (Keystone's lockout) and per client address.

Failures are rows (``LoginFailure``), so every worker process and node sees the same count. A
limit of N inside a sliding window of LOCKOUT_DURATION seconds lifts when the N-th most recent
failure leaves the window. Logins refused because of a limit are not failures themselves, so a
locked caller who keeps trying does not extend the lock.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from imageservice.identity.models import LoginFailure, User


def _window_start(now: datetime) -> datetime:
    return now - timedelta(seconds=settings.LOCKOUT_DURATION)


def _blocked_for(failures: QuerySet[LoginFailure], limit: int) -> int:
    """Seconds until fewer than ``limit`` of ``failures`` lie in the window; 0 if already so."""
    if limit <= 0:
        return 0
    now = timezone.now()
    recent = failures.filter(at__gt=_window_start(now)).order_by("-at")
    nth = list(recent.values_list("at", flat=True)[limit - 1 : limit])
    if not nth:
        return 0
    lifts_at = nth[0] + timedelta(seconds=settings.LOCKOUT_DURATION)
    return max(1, math.ceil((lifts_at - now).total_seconds()))


def account_locked_for(user: User) -> int:
    return _blocked_for(LoginFailure.objects.filter(user=user), settings.LOCKOUT_FAILURE_ATTEMPTS)


def address_blocked_for(address: str) -> int:
    failures = LoginFailure.objects.filter(address=address)
    return _blocked_for(failures, settings.LOGIN_FAILURES_PER_ADDRESS)


def record_failure(user: User | None, address: str) -> None:
    now = timezone.now()
    # Rows that have left the window count for nothing; dropping them keeps the table small.
    LoginFailure.objects.filter(at__lte=_window_start(now)).delete()
    LoginFailure.objects.create(user=user, address=address, at=now)


def clear_failures(user: User) -> int:
    """Forget the account's failures (a good login, a new password); the address's stay."""
    deleted, _ = LoginFailure.objects.filter(user=user).delete()
    return deleted
