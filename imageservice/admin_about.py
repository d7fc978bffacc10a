"""The console's "View site" page: where the Image API answers, what it offers, and where each
part is documented (the files under docs/ in the source tree)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from images.storage import stores
from imageservice.versions import advertised_versions

# docs/ of the source tree: what an operator looks up in each.
DOCS = (
    ("README.md", "Quick start, clients, what works, make targets"),
    ("docs/operator.md", "This console, property protections, import settings"),
    ("docs/configuration.md", "Every setting and its environment variable"),
    ("docs/import.md", "Interoperable image import, plugins, tasks"),
    ("docs/storage.md", "Stores and their drivers"),
    ("docs/policy.md", "Policy rules and the policy file"),
    ("docs/identity.md", "Projects, users, tokens, Keystone mode"),
    ("docs/differences-from-glance.md", "Where this service deliberately differs from Glance"),
)


def about_view(request: HttpRequest, site) -> HttpResponse:
    endpoint = settings.PUBLIC_ENDPOINT.rstrip("/") or request.build_absolute_uri("/").rstrip("/")
    context = {
        **site.each_context(request),
        "title": "Image service",
        "endpoint": endpoint,
        "identity": f"{endpoint}/identity/v3",
        "keystone_mode": settings.AUTH_STRATEGY == "keystone",
        "versions": sorted(advertised_versions(), key=lambda v: int(v.split(".")[1])),
        "import_methods": settings.ENABLED_IMPORT_METHODS if settings.ENABLE_IMAGE_IMPORT else [],
        "stores": list(stores.all_stores()),
        "default_store": stores.default_store().id,
        "docs": DOCS,
    }
    return TemplateResponse(request, "admin/about.html", context)
