"""``/versions`` (200), ``/`` or any unversioned path (300): Glance's version document;
``/v2`` without its slash (302)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponseRedirect, JsonResponse
from django.views.decorators.csrf import csrf_exempt

# Only versions whose calls are implemented are advertised; the newest is CURRENT. Without
# import (ENABLE_IMAGE_IMPORT off) the service is a v2.5 Glance.
BASE_VERSIONS = ("2.0", "2.1", "2.2", "2.3", "2.4", "2.5")
IMPORT_VERSIONS = ("2.6", "2.7", "2.9", "2.12")
# As in Glance, listed only with several stores: stores (2.8), DELETE /v2/stores/… (2.10),
# import locking and per-store progress (2.11).
MULTI_STORE_VERSIONS = ("2.8", "2.10", "2.11")
SUPPORTED_VERSIONS = BASE_VERSIONS + IMPORT_VERSIONS


def advertised_versions() -> tuple[str, ...]:
    if not settings.ENABLE_IMAGE_IMPORT:
        return BASE_VERSIONS
    return SUPPORTED_VERSIONS + (MULTI_STORE_VERSIONS if settings.ENABLED_BACKENDS else ())


def versions_document(request: HttpRequest) -> dict[str, list]:
    base = settings.PUBLIC_ENDPOINT.rstrip("/") or request.build_absolute_uri("/").rstrip("/")
    href = f"{base}/v2/"
    newest_first = sorted(advertised_versions(), key=lambda v: int(v.split(".")[1]), reverse=True)
    return {
        "versions": [
            {
                "id": f"v{version}",
                "status": "CURRENT" if index == 0 else "SUPPORTED",
                "links": [{"rel": "self", "href": href}],
            }
            for index, version in enumerate(newest_first)
        ]
    }


@csrf_exempt
def versions(request: HttpRequest) -> JsonResponse:
    return JsonResponse(versions_document(request))


def to_v2_root(request: HttpRequest) -> HttpResponseRedirect:
    """``/v2`` without its slash: Glance's URL map sends the client on to ``/v2/``."""
    return HttpResponseRedirect(request.build_absolute_uri("/v2/"))


@csrf_exempt
def multiple_choices(request: HttpRequest) -> JsonResponse:
    return JsonResponse(versions_document(request), status=300)
