"""Start-up checks that need the node registry (``tasks.nodes``)."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import CheckMessage, Warning
from django.db import DatabaseError

from tasks.models import Node


def check_shared_staging(app_configs=None, databases=None, **kwargs) -> list[CheckMessage]:
    """A filesystem staging area works across nodes only when every node uses the same shared
    directory: warn when live nodes (this one included) report different ones. A database
    check: it runs when the default database is among ``databases``."""
    if "default" not in (databases or ()):
        return []
    try:
        others = list(
            Node.objects.live().exclude(name=settings.NODE_NAME).values_list("name", "staging_uri")
        )
    except DatabaseError:
        return []  # not migrated yet, or the database is down: nothing to compare with
    reported = {name: uri for name, uri in others if uri.startswith("file:")}
    if settings.NODE_STAGING_URI.startswith("file:"):
        reported[settings.NODE_NAME] = settings.NODE_STAGING_URI
    if len(set(reported.values())) <= 1:
        return []
    listing = ", ".join(f"{name}: {uri}" for name, uri in sorted(reported.items()))
    return [
        Warning(
            f"Live nodes report different filesystem staging directories ({listing}).",
            hint=(
                "PUT /stage on one node and POST /import run by another only work when every "
                "node stages into one shared directory: give NODE_STAGING_URI the same path on "
                "a shared filesystem, or stage into the object store (docs/deployment.md)."
            ),
            id="imageservice.W050",
        )
    ]
