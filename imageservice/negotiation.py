"""Content negotiation that never refuses a request.

Successful API bodies are always JSON in Glance; openstacksdk sends an empty ``Accept`` on
uploads and PATCH, which DRF's default negotiation would answer with 406.
"""

from __future__ import annotations

from rest_framework.negotiation import BaseContentNegotiation


class IgnoreAcceptNegotiation(BaseContentNegotiation):
    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type
