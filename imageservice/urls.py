"""Root URLs: the versions document, the v2 API and the operator console."""

from __future__ import annotations

from django.urls import include, path, re_path

from imageservice import versions
from imageservice.admin_site import operator_site

handler404 = "imageservice.errors.handler404"
handler500 = "imageservice.errors.handler500"

urlpatterns = [
    path("versions", versions.versions),
    path("", versions.multiple_choices),
    path("admin/", operator_site.urls),
    path("v2/", include("images.urls")),
    path("v2/", include("tasks.urls")),
    # Glance answers any unversioned or unknown-version path with the 300 document.
    re_path(r"^(?!v2(?:/|$)|admin/|static/).+$", versions.multiple_choices),
]
