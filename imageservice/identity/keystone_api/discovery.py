"""Version discovery: ``GET /identity`` (300, every version) and ``GET /identity/v3`` (200).

keystoneauth reads ``versions.values`` from the first and ``version`` from the second and only
needs ``id``, ``status`` and the ``self`` link; the rest is what Keystone also sends.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from imageservice.identity.keystone_api.catalog import identity_v3_url

# The Identity API version Keystone has advertised since Ussuri; only the login calls of it are
# served here (docs/identity.md).
IDENTITY_VERSION = "v3.14"
VERSION_UPDATED = "2020-04-07T00:00:00Z"
MEDIA_TYPE = "application/vnd.openstack.identity-v3+json"


def version_v3(request: HttpRequest) -> dict[str, object]:
    return {
        "id": IDENTITY_VERSION,
        "status": "stable",
        "updated": VERSION_UPDATED,
        "links": [{"rel": "self", "href": f"{identity_v3_url(request)}/"}],
        "media-types": [{"base": "application/json", "type": MEDIA_TYPE}],
    }


@csrf_exempt
@require_safe
def versions(request: HttpRequest) -> JsonResponse:
    response = JsonResponse({"versions": {"values": [version_v3(request)]}}, status=300)
    response["Location"] = f"{identity_v3_url(request)}/"
    return response


@csrf_exempt
@require_safe
def version(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"version": version_v3(request)})
