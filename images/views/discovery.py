"""``/v2/info/*``: what this site offers (§8)."""

from __future__ import annotations

from imageservice.api import GlanceAPIView
from imageservice.errors import GlanceError


class StoresInfoView(GlanceAPIView):
    policy_map = {"get": "get_discovery"}
    bodyless_methods = ("get",)

    def get(self, request):
        # A single unnamed store: glanceclient reads this 404 as "no multi-store".
        raise GlanceError(404, "Multi backend is not supported at this site.")
