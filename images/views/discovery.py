"""``/v2/info/*``: what this site offers (§8)."""

from __future__ import annotations

from rest_framework.response import Response

from images.storage import stores
from imageservice.api import GlanceAPIView
from imageservice.errors import GlanceError
from imageservice.openapi import operations as doc
from imageservice.quotas import services as quotas


def _store_entries() -> list[dict[str, object]]:
    if not stores.multiple_stores():
        # A single unnamed store: glanceclient reads this 404 as "no multi-store".
        raise GlanceError(404, "Multi backend is not supported at this site.")
    default = stores.default_store().id
    entries = []
    for store in stores.all_stores().values():
        entry: dict[str, object] = {"id": store.id}
        if store.description:
            entry["description"] = store.description
        if store.id == default:
            entry["default"] = "true"
        entries.append(entry)
    return entries


class StoresInfoView(GlanceAPIView):
    policy_map = {"get": "get_discovery"}
    bodyless_methods = ("get",)

    @doc.glance_operation(
        "stores_info",
        "The stores this site offers",
        tag="stores",
        ok={200: "Stores"},
        errors=(404,),
    )
    def get(self, request):
        return Response({"stores": _store_entries()})


class StoresDetailView(GlanceAPIView):
    policy_map = {"get": "stores_info_detail"}
    bodyless_methods = ("get",)

    @doc.glance_operation(
        "stores_detail",
        "The stores with their type and properties",
        tag="stores",
        ok={200: "StoresDetail"},
        errors=(404,),
    )
    def get(self, request):
        entries = _store_entries()
        known = stores.all_stores()
        for entry in entries:
            store = known[entry["id"]]
            entry.update(
                {"type": store.type_name, "weight": store.weight, "properties": store.properties()}
            )
        return Response({"stores": entries})


class UsageInfoView(GlanceAPIView):
    # Glance checks no policy here; the open default rule keeps that, letting an operator
    # tighten it.
    policy_map = {"get": "get_discovery"}

    def http_method_not_allowed(self, request, *args, **kwargs):
        # Glance routes only GET here (no 405 route beside it, no body check): the rest is 404.
        raise GlanceError(404)

    @doc.glance_operation(
        "usage_info",
        "The caller's project: each quota's limit and current usage",
        tag="quotas",
        ok={200: "Usage"},
    )
    def get(self, request):
        usage = quotas.project_usage(request.credentials.project_id)
        return Response({"usage": {name: entry.as_json() for name, entry in usage.items()}})
