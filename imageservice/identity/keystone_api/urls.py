"""Mounted at ``/identity/`` by the root URLs; see docs/identity.md."""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import path, re_path

from imageservice.identity.keystone_api import discovery, views


def local_mode_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """In Keystone mode the cloud's Keystone answers logins; these calls do not exist here."""

    @functools.wraps(view)
    def answer(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if settings.AUTH_STRATEGY == "keystone":
            return views.not_found(request)
        return view(request, *args, **kwargs)

    return answer


urlpatterns = [
    path("", local_mode_only(discovery.versions)),
    path("v3", local_mode_only(discovery.version)),
    path("v3/", local_mode_only(discovery.version)),
    path("v3/auth/tokens", local_mode_only(views.AuthTokensView.as_view())),
    # [\s\S], not ".": a path may hold a newline (%0A), which "." does not match.
    re_path(r"^[\s\S]*$", views.not_found),
]
