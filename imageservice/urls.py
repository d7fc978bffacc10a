"""Root URLs: the versions document, the v2 API, the embedded Keystone login calls, the
operator console and the OpenAPI document with its page."""

from __future__ import annotations

from django.urls import include, path, re_path

from imageservice import health, versions
from imageservice.admin_site import operator_site
from imageservice.identity.keystone_api import discovery as identity_discovery
from imageservice.metrics.views import metrics_view
from imageservice.openapi import views as openapi_views

handler404 = "imageservice.errors.handler404"
handler500 = "imageservice.errors.handler500"

urlpatterns = [
    path("versions", versions.versions),
    path("versions/", versions.versions),
    path("healthcheck", health.healthcheck),
    path("metrics", metrics_view, name="metrics"),
    path("", versions.multiple_choices),
    path("v2", versions.to_v2_root),
    path("openapi.json", openapi_views.document),
    path("api", openapi_views.page),
    path("admin/", operator_site.urls),
    path("v2/", include("images.urls")),
    path("v2/", include("tasks.urls")),
    path("identity", identity_discovery.versions),
    path("identity/", include("imageservice.identity.keystone_api.urls")),
    # Glance answers any unversioned or unknown-version path (a newline in it included) with
    # the 300 document; the identity API answers its own unknown paths with 404.
    re_path(
        r"^(?!v2(?:/|$)|identity(?:/|$)|admin/|static/)[\s\S]+$",
        versions.multiple_choices,
        name="unversioned",
    ),
]
