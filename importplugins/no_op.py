"""``no_op``: proves the plugin plumbing and changes nothing (Glance's default sample plugin)."""

from __future__ import annotations

import logging

from importplugins.base import ImportContext, ImportPlugin

log = logging.getLogger(__name__)


class NoOp(ImportPlugin):
    name = "no_op"
    reads_data = False
    description = "Does nothing; proves that the import plugin chain runs."

    def run(self, context: ImportContext) -> None:
        log.debug("no_op import plugin ran for image %s", context.image_id)
