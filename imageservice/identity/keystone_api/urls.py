"""Mounted at ``/identity/`` by the root URLs; see docs/identity.md."""

from __future__ import annotations

from django.urls import path, re_path

from imageservice.identity.keystone_api import discovery, views

urlpatterns = [
    path("", discovery.versions),
    path("v3", discovery.version),
    path("v3/", discovery.version),
    path("v3/auth/tokens", views.AuthTokensView.as_view()),
    re_path(r"^.*$", views.not_found),
]
