"""Who is acting, for the events the service layer emits: the API caller, the console user,
the management command or the import job, with the request id that ties them to logs.

The request's identity is bound by the authentication classes (API) or read from the session
user (console) by :class:`EventContextMiddleware`; commands subclass :class:`AuditedCommand`;
jobs use :func:`acting_as`. Context variables keep concurrent requests of one gthread worker
apart.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass

from django.conf import settings
from django.core.management.base import BaseCommand


@dataclass(frozen=True)
class Actor:
    user_id: str | None = None
    project_id: str | None = None
    roles: tuple[str, ...] = ()
    # The management command or job that acted ("" for a request).
    command: str = ""

    @classmethod
    def from_credentials(cls, credentials, command: str = "") -> Actor:
        return cls(
            user_id=credentials.user_id,
            project_id=credentials.project_id,
            roles=tuple(sorted(credentials.roles)),
            command=command,
        )


_actor: ContextVar[Actor | None] = ContextVar("event_actor", default=None)
_request: ContextVar[object | None] = ContextVar("event_request", default=None)


def bind_credentials(credentials) -> None:
    """The API request's caller, once authentication resolved it."""
    _actor.set(Actor.from_credentials(credentials))


def current_actor() -> Actor:
    actor = _actor.get()
    if actor is not None:
        return actor
    request = _request.get()
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and hasattr(user, "role_names"):
        # A console user: a local account (Keystone-mode console users are local rows too).
        return Actor(
            user_id=user.keystone_id,
            project_id=user.project_id,
            roles=tuple(sorted(user.role_names())),
        )
    return Actor()


def current_request_id() -> str | None:
    return getattr(_request.get(), "request_id", None)


def node_name() -> str:
    return settings.NODE_NAME


@contextlib.contextmanager
def acting_as(actor: Actor, request_id: str | None = None) -> Iterator[None]:
    """Attribute the events emitted inside to ``actor`` (a command, a job)."""
    actor_token = _actor.set(actor)
    request_token = _request.set(_JobRequest(request_id) if request_id else None)
    try:
        yield
    finally:
        _actor.reset(actor_token)
        _request.reset(request_token)


@dataclass(frozen=True)
class _JobRequest:
    request_id: str


class EventContextMiddleware:
    """Binds the request (its id, its console user) for the events its view emits; after
    ``RequestIdMiddleware`` and ``AuthenticationMiddleware``."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not getattr(request, "request_id", None):
            # Console and identity requests get an id too, so their audit rows have one.
            request.request_id = f"req-{uuid.uuid4()}"
        request_token = _request.set(request)
        actor_token = _actor.set(None)
        try:
            return self.get_response(request)
        finally:
            _actor.reset(actor_token)
            _request.reset(request_token)


class AuditedCommand(BaseCommand):
    """A management command whose writes are attributed to it by name in the audit trail."""

    def execute(self, *args, **options):
        name = type(self).__module__.rsplit(".", 1)[-1]
        with acting_as(Actor(command=name)):
            return super().execute(*args, **options)
