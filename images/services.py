"""One write path per image operation, shared by the API, the admin and management commands."""

from __future__ import annotations

from collections.abc import Mapping

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from images import patch, validation
from images.data import delete_data
from images.models import (
    Image,
    ImageMember,
    ImageProperty,
    ImageStatus,
    ImageTag,
    MemberStatus,
    Visibility,
)
from images.protections import PropertyAccess
from imageservice import events
from imageservice.errors import GlanceError
from imageservice.identity.credentials import Credentials
from imageservice.policy.permissions import authorize, refuse
from imageservice.quotas import services as quotas
from imageservice.quotas.models import IMAGE_COUNT_TOTAL

CREATE_FIELDS = (
    "id",
    "name",
    "visibility",
    "protected",
    "os_hidden",
    "container_format",
    "disk_format",
    "min_disk",
    "min_ram",
    "owner",
)


def check_visibility_change(credentials: Credentials, visibility: str | None, target) -> None:
    """Making an image public or community needs its own policy (§2.6)."""
    rule = {Visibility.PUBLIC: "publicize_image", Visibility.COMMUNITY: "communitize_image"}.get(
        visibility
    )
    if rule and not authorize(rule, credentials, target):
        raise refuse(rule)


def validate_create_body(body: object) -> dict[str, object]:
    """Steps 1–4 of Glance's create checks: shape, read-only links, schema, custom names."""
    if not isinstance(body, dict):
        raise GlanceError(400, "Provided object does not match schema 'image': not an object")
    for name in ("direct_url", "self", "file", "schema", "stores"):
        if name in body:
            raise validation.read_only_error(name)
    validation.validate_against_schema(body)
    validation.check_custom_names(body)
    return body


def _requested_owner(body: Mapping[str, object], credentials: Credentials) -> object:
    # As Glance: only a missing owner defaults to the caller's project; `"owner": null` stays
    # None, so add_image (project_id:%(owner)s) refuses it to anyone but an admin.
    return body.get("owner", credentials.project_id)


def create_target(body: Mapping[str, object], credentials: Credentials) -> dict[str, object]:
    owner = _requested_owner(body, credentials)
    return {"project_id": owner, "owner": owner, "visibility": body.get("visibility", "private")}


def create_refusal(body: Mapping[str, object], credentials: Credentials) -> GlanceError:
    """Why ``add_image`` refused: naming another project as owner gets Glance's own message."""
    owner = _requested_owner(body, credentials)
    if owner != credentials.project_id:
        return GlanceError(403, f"You are not permitted to create images owned by '{owner}'.")
    return refuse("add_image")


def create_image(
    body: Mapping[str, object], credentials: Credentials, access: PropertyAccess | None = None
) -> Image:
    """Create a queued image from a body that passed ``validate_create_body`` and ``add_image``.

    ``access``: the API caller's property protections (None: a trusted, unprotected write).
    """
    owner = body.get("owner") or credentials.project_id
    check_visibility_change(credentials, body.get("visibility"), create_target(body, credentials))
    for name in body:
        if name in validation.READ_ONLY_ATTRIBUTES and name != "id":
            raise validation.read_only_error(name)
        if validation.is_reserved(name):
            raise validation.reserved_error(name)
    properties = {k: v for k, v in body.items() if k not in validation.BASE_ATTRIBUTES}
    # Property protections (internals §5.4). Unlike Glance, a property the caller may create
    # but not read is stored (Glance silently drops it); responses just never show it.
    if access is not None:
        for name in properties:
            access.require("create", name)
    tags = set(body.get("tags") or [])
    # Glance's schema accepts upper-case hex digits and its MySQL keys compare without case, so
    # `ABC…` and `abc…` are one image there; lower-casing keeps them one image here too.
    image_id = (body.get("id") or "").lower() or None
    validation.check_property_quota(image_id or "", len(properties))
    validation.check_tag_quota(len(tags))
    fields = {name: body[name] for name in CREATE_FIELDS if name in body}
    validation.check_no_4byte_characters(fields, properties, tags)
    fields["owner"] = owner
    if image_id is None:
        fields.pop("id", None)
    else:
        fields["id"] = image_id
    now = timezone.now()
    image = Image(created_at=now, updated_at=now, **fields)
    try:
        with quotas.admitting(owner, IMAGE_COUNT_TOTAL), transaction.atomic():
            image.save(force_insert=True)
            _add_properties(image, properties)
            _add_tags(image, tags)
            events.emit("image.create", image=image)
    except IntegrityError:
        raise GlanceError(409, f"Image ID {image_id} already exists!") from None
    return image


def _add_properties(image: Image, properties: Mapping[str, str]) -> None:
    ImageProperty.objects.bulk_create(
        ImageProperty(image=image, name=name, value=value) for name, value in properties.items()
    )


def _add_tags(image: Image, tags: set[str]) -> None:
    ImageTag.objects.bulk_create(ImageTag(image=image, value=tag) for tag in sorted(tags))


def _replace_properties(image: Image, properties: Mapping[str, str]) -> None:
    # os_glance_* rows belong to the import machinery, which may change them concurrently.
    # Only rows whose value changes are written, so properties a PATCH did not touch (above all
    # those hidden from the caller by property protections) stay exactly as stored.
    wanted = {k: v for k, v in properties.items() if not k.startswith("os_glance")}
    stored = {k: v for k, v in image.property_dict().items() if not k.startswith("os_glance")}
    image.properties.filter(name__in=[k for k in stored if k not in wanted]).delete()
    for name, value in wanted.items():
        if name in stored and stored[name] != value:
            image.properties.filter(name=name).update(value=value)
    _add_properties(image, {k: v for k, v in wanted.items() if k not in stored})


def _replace_tags(image: Image, tags: set[str]) -> None:
    image.tags.all().delete()
    _add_tags(image, tags)


def patch_image(
    image: Image,
    operations: list[patch.Operation],
    media_type: str,
    *,
    credentials: Credentials,
    access: PropertyAccess,
    is_admin: bool,
) -> Image:
    """``PATCH /v2/images/{id}``: the operations applied in order in memory, then one save.

    One failing operation leaves the image untouched. ``access``: the caller's property
    protections; properties it may not read never enter the document and are kept as stored.
    """
    document = patch.apply_operations(image, operations, media_type, is_admin, access)
    if document.get("visibility") != image.visibility:
        check_visibility_change(
            credentials, document.get("visibility"), image.policy_target(credentials)
        )
    fields, properties, tags = patch.split_document(document)
    mentioned = {operation.name for operation in operations}
    properties = {**access.hidden(image.property_dict(), mentioned), **properties}
    return update_image(image, fields, properties, tags, access)


def update_image(
    image: Image,
    fields: Mapping[str, object],
    properties: dict[str, str],
    tags: set[str],
    access: PropertyAccess,
) -> Image:
    """The one write path for edits of an image's attributes, properties and tags: the API's
    PATCH and the console's change form.

    ``properties`` and ``tags`` are the complete new sets. Refuses, in the API's words, what
    ``check_property_changes`` refuses and a tag count over the quota.
    """
    check_property_changes(image, properties, access)
    validation.check_tag_quota(len(tags))
    validation.check_no_4byte_characters(fields, properties, tags)
    return _save_image_changes(image, fields, properties, tags)


def check_property_changes(
    image: Image, properties: Mapping[str, str], access: PropertyAccess
) -> None:
    """Refuse leaving ``image`` with exactly ``properties``, in the API's words.

    Each property created or updated needs a custom, unreserved name; each one created, updated
    or deleted needs ``access`` for that operation; the total must fit the property quota.
    """
    for operation, name in _property_changes(image.property_dict(), properties):
        if operation != "delete":
            _check_property_name(name)
        access.require(operation, name)
    validation.check_property_quota(image.id, len(properties))


def _property_changes(
    stored: Mapping[str, str], wanted: Mapping[str, str]
) -> list[tuple[str, str]]:
    created = [("create", name) for name in wanted if name not in stored]
    updated = [
        ("update", name) for name in wanted if name in stored and stored[name] != wanted[name]
    ]
    deleted = [("delete", name) for name in stored if name not in wanted]
    return created + updated + deleted


def _check_property_name(name: str) -> None:
    if validation.is_reserved(name):
        raise validation.reserved_error(name)
    if name in validation.BASE_ATTRIBUTES:
        # Only the console gets here: in an API body these names are the image's attributes.
        raise GlanceError(400, f"'{name}' is an image attribute, not a custom property.")
    validation.check_custom_names([name])


@transaction.atomic
def _save_image_changes(
    image: Image, fields: Mapping[str, object], properties: dict[str, str], tags: set[str]
) -> Image:
    """Persist an edit computed in memory: one save, ``updated_at`` moved only on change."""
    before = _metadata(image)
    changed = False
    for name, value in fields.items():
        if getattr(image, name) != value:
            setattr(image, name, value)
            changed = True
    if properties != image.property_dict():
        _replace_properties(image, properties)
        changed = True
    if tags != set(image.tag_list()):
        _replace_tags(image, tags)
        changed = True
    if changed:
        image.touch()
        image.save()
    saved = Image.objects.with_relations().get(pk=image.pk)
    if changed:
        events.emit(
            "image.update", image=saved, changes=events.field_changes(before, _metadata(saved))
        )
    return saved


def _metadata(image: Image) -> dict[str, object]:
    """What an edit may change, flat as Glance's image body: attributes, properties, tags."""
    attributes = {name: getattr(image, name) for name in CREATE_FIELDS if name != "id"}
    return {**attributes, **image.property_dict(), "tags": image.tag_list()}


@transaction.atomic
def delete_image(image: Image) -> None:
    if image.protected:
        raise GlanceError(403, f"Image {image.id} is protected and cannot be deleted.")
    # A write may be under way, or dead with its worker: its partial data has no location yet.
    writing = image.status in (ImageStatus.SAVING, ImageStatus.UPLOADING, ImageStatus.IMPORTING)
    image.mark_deleted()
    image.save()
    # Before the rows go: the notification carries the properties and tags deleted with them.
    events.emit("image.delete", image=image)
    delete_data(image, unfinished_writes=writing)
    image.properties.all().delete()
    image.tags.all().delete()
    image.members.all().delete()


def deactivate_image(image: Image) -> None:
    _toggle_active(image, ImageStatus.ACTIVE, ImageStatus.DEACTIVATED, "deactivate")


def reactivate_image(image: Image) -> None:
    _toggle_active(image, ImageStatus.DEACTIVATED, ImageStatus.ACTIVE, "reactivate")


def _toggle_active(image: Image, source: str, target: str, verb: str) -> None:
    if image.status == target:
        return
    if image.status != source:
        raise GlanceError(403, f"Not allowed to {verb} image in status '{image.status}'")
    # Conditional UPDATE: a concurrent status change wins instead of being overwritten.
    now = timezone.now()
    updated = Image.objects.filter(pk=image.pk, status=source).update(status=target, updated_at=now)
    if not updated:
        raise GlanceError(409, f"Image {image.id} changed status while being {verb}d.")
    image.status, image.updated_at = target, now
    events.emit(f"image.{verb}", image=image, changes={"status": [source, target]})


def add_tag(image: Image, tag: str) -> None:
    if len(tag) > 255:
        raise GlanceError(
            400, f"Provided object does not match schema 'image': '{tag}' is too long"
        )
    validation.check_no_4byte_characters({}, tags=[tag])
    before = image.tag_list()
    if tag in before:
        return
    validation.check_added_tag_quota(image.id, len(before) + 1)
    with transaction.atomic():
        ImageTag.objects.get_or_create(image=image, value=tag)
        image.touch()
        image.save(update_fields=["updated_at"])
        _emit_tags_changed("image.tag.add", image, before)


@transaction.atomic
def remove_tag(image: Image, tag: str) -> None:
    before = image.tag_list()
    deleted, _ = ImageTag.objects.filter(image=image, value=tag).delete()
    if not deleted:
        raise GlanceError(404)
    image.touch()
    image.save(update_fields=["updated_at"])
    _emit_tags_changed("image.tag.remove", image, before)


def _emit_tags_changed(action: str, image: Image, before: list[str]) -> None:
    # The prefetched tags (if any) are out of date now.
    image = Image.objects.with_relations().get(pk=image.pk)
    events.emit(action, image=image, changes={"tags": [before, image.tag_list()]})


def add_member(image: Image, member_id: str) -> ImageMember:
    _check_shared(image)
    validation.check_no_4byte_characters({"member": member_id})
    if image.member_row(member_id) is not None:
        raise _duplicated_member(image, member_id)
    _check_member_quota(image, image.members.count() + 1)
    try:
        with transaction.atomic():
            member = ImageMember.objects.create(image=image, member_id=member_id)
            events.emit("image.member.create", member=member)
            return member
    except IntegrityError:
        raise _duplicated_member(image, member_id) from None


def _duplicated_member(image: Image, member_id: str) -> GlanceError:
    return GlanceError(409, f"Member {member_id} is duplicated for image {image.id}")


def _check_shared(image: Image) -> None:
    if image.visibility != Visibility.SHARED:
        raise GlanceError(403, f"Not allowed to create members for image {image.id}.")


def _check_member_quota(image: Image, attempted: int) -> None:
    if attempted > settings.IMAGE_MEMBER_QUOTA:
        raise GlanceError(
            413,
            f"Image member limit exceeded for image {image.id}: The limit has been exceeded on "
            "the number of allowed image members for this image. "
            f"Attempted: {attempted}, Maximum: {settings.IMAGE_MEMBER_QUOTA}:",
        )


def set_member_status(member: ImageMember, status: str) -> ImageMember:
    _check_member_status(status)
    before = member.status
    member.status = status
    member.updated_at = timezone.now()
    with transaction.atomic():
        member.save(update_fields=["status", "updated_at"])
        events.emit("image.member.update", member=member, changes={"status": [before, status]})
    return member


@transaction.atomic
def remove_member(member: ImageMember) -> None:
    events.emit("image.member.delete", member=member)
    member.delete()


def _check_member_status(status: str) -> None:
    if status not in MemberStatus.values:
        raise GlanceError(
            400, 'Incorrect request: Status must be "pending", "accepted" or "rejected".'
        )


def check_member_changes(image: Image, wanted: Mapping[str, str]) -> None:
    """Refuse, in the API's words, making ``wanted`` (member id → status) the image's members:
    additions need a shared image and room under the member quota; statuses must be known."""
    stored = set(image.members.values_list("member_id", flat=True))
    if any(member_id not in stored for member_id in wanted):
        # Existing members stay when an image stops being shared (as in Glance); new ones
        # need a shared image and room under the quota.
        _check_shared(image)
        _check_member_quota(image, len(wanted))
    for status in wanted.values():
        _check_member_status(status)


@transaction.atomic
def change_members(image: Image, wanted: Mapping[str, str]) -> None:
    """Make ``wanted`` (member id → status) the image's members through the API's write paths:
    ``remove_member``, ``add_member`` and ``set_member_status``."""
    check_member_changes(image, wanted)
    stored = {member.member_id: member for member in image.members.all()}
    for member_id, member in stored.items():
        if member_id not in wanted:
            remove_member(member)
    for member_id, status in wanted.items():
        member = stored.get(member_id) or add_member(image, member_id)
        if member.status != status:
            set_member_status(member, status)
