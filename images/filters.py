"""GET /v2/images: filters, sorting and marker paging (§5.2). (Placeholder being replaced.)"""

from __future__ import annotations

from dataclasses import dataclass

from images.models import Image


@dataclass
class ImagePage:
    images: list[Image]
    first: str
    next: str | None


def list_images(request, is_admin: bool) -> ImagePage:
    credentials = request.credentials
    images = list(
        Image.objects.alive()
        .visible_to(credentials.project_id, is_admin)
        .with_relations()
        .order_by("-created_at", "-id")[:25]
    )
    return ImagePage(images=images, first="/v2/images", next=None)
