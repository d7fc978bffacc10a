"""An import plugin living in its own distribution, as an operator would write one."""

from __future__ import annotations

import hashlib

from importplugins.base import ImportContext, ImportPlugin

CHUNK_SIZE = 1024 * 1024


class AddChecksumNote(ImportPlugin):
    name = "add_checksum_note"
    description = "Sets checksum_note to the SHA-256 of the data as the plugin chain saw it."

    def run(self, context: ImportContext) -> None:
        digest = hashlib.sha256()
        with context.data_path.open("rb") as data:
            while chunk := data.read(CHUNK_SIZE):
                digest.update(chunk)
        context.properties["checksum_note"] = f"sha256:{digest.hexdigest()}"
