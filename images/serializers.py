"""Image and member records as Glance puts them on the wire."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from django.conf import settings

from images.models import Image, ImageMember, ImageStatus
from images.storage.stores import locations_shown, multiple_stores

# Properties Glance keeps internally and never shows (internals §3.3), and the node of the
# last upload, kept the same way (images.data).
HIDDEN_PROPERTIES = frozenset(
    {"os_glance_stage_host", "os_glance_hash_op_host", "os_glance_upload_host"}
)


def glance_timestamp(value: datetime | None) -> str | None:
    """``YYYY-MM-DDThh:mm:ssZ``: UTC, whole seconds, literal Z."""
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def image_to_dict(
    image: Image, *, viewer_is_admin: bool, readable: Callable[[str], bool] | None = None
) -> dict[str, object]:
    """``readable``: property protections' read check for the viewer (None: show all)."""
    body: dict[str, object] = {
        name: value
        for name, value in image.property_dict().items()
        if name not in HIDDEN_PROPERTIES and (readable is None or readable(name))
    }
    body.update(
        {
            "id": image.id,
            "name": image.name,
            "status": image.status,
            "visibility": image.visibility,
            "protected": image.protected,
            "os_hidden": image.os_hidden,
            "checksum": image.checksum,
            "os_hash_algo": image.os_hash_algo,
            "os_hash_value": image.os_hash_value,
            "owner": image.owner,
            "size": image.size,
            "virtual_size": image.virtual_size,
            "container_format": image.container_format,
            "disk_format": image.disk_format,
            "min_disk": image.min_disk,
            "min_ram": image.min_ram,
            "created_at": glance_timestamp(image.created_at),
            "updated_at": glance_timestamp(image.updated_at),
            "tags": image.tag_list(),
            "self": f"/v2/images/{image.id}",
            "file": f"/v2/images/{image.id}/file",
            "schema": "/v2/schemas/image",
        }
    )
    body.update(location_fields(image, viewer_is_admin))
    return body


def location_fields(image: Image, viewer_is_admin: bool) -> dict[str, object]:
    """``stores``, ``direct_url`` and ``locations``: each shown only where Glance shows it."""
    if not locations_shown():
        return {}
    hidden = image.status == ImageStatus.QUEUED or (
        image.status == ImageStatus.DEACTIVATED and not viewer_is_admin
    )
    locations = [] if hidden else image.location_list()
    fields: dict[str, object] = {}
    if multiple_stores() and locations:
        fields["stores"] = ",".join(location.store for location in locations)
    if settings.SHOW_IMAGE_DIRECT_URL and locations:
        fields["direct_url"] = locations[0].url
    if settings.SHOW_MULTIPLE_LOCATIONS:
        fields["locations"] = [
            {"url": location.url, "metadata": _location_metadata(location)}
            for location in locations
        ]
    return fields


def member_to_dict(member: ImageMember) -> dict[str, object]:
    return {
        "member_id": member.member_id,
        "image_id": member.image_id,
        "status": member.status,
        "created_at": glance_timestamp(member.created_at),
        "updated_at": glance_timestamp(member.updated_at),
        "schema": "/v2/schemas/member",
    }


def _location_metadata(location) -> dict[str, object]:
    if not multiple_stores():
        return dict(location.metadata)
    return {**location.metadata, "store": location.store}
