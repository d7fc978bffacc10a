"""The image record: base fields, custom properties, tags and members, and its status machine."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models.functions import MD5
from django.db.models.query import ModelIterable
from django.utils import timezone

from images.storage.stores import locations_shown
from imageservice.config_syntax import split_list


class ImageStatus(models.TextChoices):
    QUEUED = "queued"
    SAVING = "saving"
    UPLOADING = "uploading"
    IMPORTING = "importing"
    ACTIVE = "active"
    DEACTIVATED = "deactivated"
    KILLED = "killed"
    PENDING_DELETE = "pending_delete"
    DELETED = "deleted"


class Visibility(models.TextChoices):
    PUBLIC = "public"
    COMMUNITY = "community"
    SHARED = "shared"
    PRIVATE = "private"


class MemberStatus(models.TextChoices):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


# Glance's domain transition table (glance-api-v2.md §4.2); anything else is refused.
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    "queued": frozenset({"saving", "uploading", "importing", "active", "deleted"}),
    "saving": frozenset({"active", "queued", "killed", "deleted"}),
    "uploading": frozenset({"importing", "queued", "deleted"}),
    "importing": frozenset({"active", "queued", "deleted"}),
    "active": frozenset({"deactivated", "deleted", "pending_delete"}),
    "deactivated": frozenset({"active", "deleted"}),
    "killed": frozenset({"deleted"}),
    "pending_delete": frozenset({"deleted", "active"}),
    "deleted": frozenset(),
}


IMPORT_LOCK = "os_glance_import_task"
IMPORTING_TO_STORES = "os_glance_importing_to_stores"
FAILED_IMPORT = "os_glance_failed_import"

# What an image without data carries (§4.2: size and hashes cleared on the way back to queued).
NO_DATA = {
    "size": None,
    "virtual_size": None,
    "checksum": None,
    "os_hash_algo": None,
    "os_hash_value": None,
}


class InvalidTransition(Exception):
    def __init__(self, current: str, target: str):
        super().__init__(f"Image status transition from {current} to {target} is not allowed")
        self.current = current
        self.target = target


def new_image_id() -> str:
    return str(uuid.uuid4())


class DisplayIterable(ModelIterable):
    """Images with their properties and tags loaded in two flat queries.

    Django's prefetch builds a queryset per image and relation; on a 25-image list page that
    cost more than everything else together (see docs/benchmarks.md).
    """

    def __iter__(self):
        images = list(super().__iter__())
        ids = [image.pk for image in images]
        properties: dict[str, dict[str, str]] = defaultdict(dict)
        for image_id, name, value in ImageProperty.objects.filter(image_id__in=ids).values_list(
            "image_id", "name", "value"
        ):
            properties[image_id][name] = value
        tags: dict[str, list[str]] = defaultdict(list)
        for image_id, value in ImageTag.objects.filter(image_id__in=ids).values_list(
            "image_id", "value"
        ):
            tags[image_id].append(value)
        for image in images:
            image.loaded_properties = properties[image.pk]
            image.loaded_tags = sorted(tags[image.pk])
        if locations_shown():
            self._load_locations(images, ids)
        yield from images

    @staticmethod
    def _load_locations(images: list[Image], ids: list[str]) -> None:
        locations: dict[str, list[ImageLocation]] = defaultdict(list)
        for location in ImageLocation.objects.filter(image_id__in=ids).order_by("created_at"):
            locations[location.image_id].append(location)
        for image in images:
            image.loaded_locations = locations[image.pk]


class ImageQuerySet(models.QuerySet):
    def alive(self) -> ImageQuerySet:
        """Images that exist for the API: not deleted (soft-deleted rows keep their id reserved)."""
        return self.filter(deleted=False)

    def with_relations(self) -> ImageQuerySet:
        return self.prefetch_related("properties", "tags", "members")

    def for_display(self) -> ImageQuerySet:
        """What an image body needs (properties and tags), without the membership rows."""
        clone = self._chain()
        clone._iterable_class = DisplayIterable
        return clone

    def stale_uploads(self) -> ImageQuerySet:
        """``Image.is_stale_upload()`` as a query: saving, or uploading without staged data (an
        uploading image with staged data is at rest, waiting for its import), silent for
        ``UPLOAD_STALE_SECONDS``."""
        limit = timezone.now() - timedelta(seconds=settings.UPLOAD_STALE_SECONDS)
        return self.filter(updated_at__lt=limit).filter(
            models.Q(status=ImageStatus.SAVING)
            | models.Q(status=ImageStatus.UPLOADING, staged__isnull=True)
        )

    def waiting_for_data(self, older_than: timedelta) -> ImageQuerySet:
        """``queued`` or ``uploading`` images created more than ``older_than`` ago: created and
        never given data, or staged and never imported."""
        return self.filter(
            status__in=(ImageStatus.QUEUED, ImageStatus.UPLOADING),
            created_at__lt=timezone.now() - older_than,
        )


class Image(models.Model):
    id = models.CharField(primary_key=True, max_length=36, default=new_image_id)
    name = models.CharField(max_length=255, null=True, blank=True)
    status = models.CharField(
        max_length=30, choices=ImageStatus.choices, default=ImageStatus.QUEUED, db_index=True
    )
    visibility = models.CharField(
        max_length=20, choices=Visibility.choices, default=Visibility.SHARED, db_index=True
    )
    protected = models.BooleanField(default=False)
    os_hidden = models.BooleanField(default=False)
    checksum = models.CharField(max_length=32, null=True, blank=True, db_index=True)
    os_hash_algo = models.CharField(max_length=64, null=True, blank=True)
    os_hash_value = models.CharField(max_length=128, null=True, blank=True, db_index=True)
    owner = models.CharField(max_length=255, null=True, blank=True, db_index=True)
    size = models.BigIntegerField(null=True, blank=True)
    virtual_size = models.BigIntegerField(null=True, blank=True)
    container_format = models.CharField(max_length=32, null=True, blank=True)
    disk_format = models.CharField(max_length=32, null=True, blank=True)
    min_disk = models.IntegerField(default=0)
    min_ram = models.IntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(default=timezone.now, db_index=True)
    deleted = models.BooleanField(default=False, db_index=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    # The upload or staging writing the image's data now (``saving``/``uploading``): only that
    # attempt may finish it, so a writer taken over as dead cannot activate over another's.
    write_attempt = models.CharField(max_length=32, blank=True, default="", editable=False)

    objects = ImageQuerySet.as_manager()

    class Meta:
        # The lists' default order, and the same order within one status (the console's status
        # filter, the API's ?status=): neither sorts the matching rows.
        indexes = [
            models.Index(fields=["created_at", "id"]),
            models.Index(fields=["status", "created_at", "id"]),
        ]

    def __str__(self) -> str:
        return f"{self.name or '(no name)'} ({self.id})"

    # --- status machine -------------------------------------------------------------------
    def can_transition_to(self, target: str) -> bool:
        return target in ALLOWED_TRANSITIONS[self.status]

    def transition_to(self, target: str) -> None:
        if not self.can_transition_to(target):
            raise InvalidTransition(self.status, target)
        self.status = target

    def touch(self) -> None:
        self.updated_at = timezone.now()

    def move(self, source: str, target: str, *, attempt: str | None = None, **fields) -> bool:
        """``source → target`` by conditional UPDATE; False when the image was not in ``source``
        (or, with ``attempt``, no longer being written by that attempt).

        Concurrent requests and workers race through here: the loser sees False (a 409), it
        never overwrites the winner's status.
        """
        current = Image.objects.filter(pk=self.pk, status=source, deleted=False)
        if attempt is not None:
            current = current.filter(write_attempt=attempt)
        moved = current.update(status=target, updated_at=timezone.now(), **fields)
        if moved:
            self.status = target
            for name, value in fields.items():
                setattr(self, name, value)
        return bool(moved)

    def claim(self, source: str, target: str, attempt: str = "") -> None:
        """``source → target`` for the write ``attempt``, else :class:`InvalidTransition`."""
        if not self.move(source, target, write_attempt=attempt):
            raise InvalidTransition(self.status, target)

    def begin_saving(self, attempt: str) -> None:
        """``queued → saving`` for the ``PUT /file`` that is write ``attempt``."""
        self.claim(ImageStatus.QUEUED, ImageStatus.SAVING, attempt)

    def is_stale_upload(self) -> bool:
        """An upload or staging that stopped beating: its worker died mid-stream.

        (An ``uploading`` image with complete staged data is at rest, waiting for its import.)
        """
        limit = timezone.now() - timedelta(seconds=settings.UPLOAD_STALE_SECONDS)
        if self.updated_at >= limit:
            return False
        if self.status == ImageStatus.SAVING:
            return True
        return (
            self.status == ImageStatus.UPLOADING
            and not StagedData.objects.filter(image_id=self.pk).exists()
        )

    def revert_to_queued(
        self, source: str = ImageStatus.SAVING, attempt: str | None = None
    ) -> None:
        """A failed upload or staging: back to ``queued`` with size and hashes cleared (§4.2);
        with ``attempt``, only while that attempt still writes the image."""
        self.move(source, ImageStatus.QUEUED, attempt=attempt, write_attempt="", **NO_DATA)

    def activate_with_data(
        self,
        data,
        store_id: str,
        url: str,
        source: str = ImageStatus.SAVING,
        attempt: str | None = None,
    ) -> bool:
        """``source → active`` with the written data's facts; False if the image was deleted
        (or, with ``attempt``, is no longer written by it)."""
        fields = {
            "size": data.size,
            # Glance leaves an image without data (0 bytes) with no virtual size, not 0.
            "virtual_size": data.virtual_size or None,
            "checksum": data.checksum,
            "os_hash_algo": data.os_hash_algo,
            "os_hash_value": data.os_hash_value,
            "write_attempt": "",
        }
        with transaction.atomic():
            activated = self.move(source, ImageStatus.ACTIVE, attempt=attempt, **fields)
            if activated:
                ImageLocation.objects.update_or_create(
                    image=self, store=store_id, defaults={"url": url}
                )
        return activated

    # --- import bookkeeping (os_glance_* properties, written only by the service) ------------
    def take_import_lock(self, task_id: str) -> bool:
        """Create ``os_glance_import_task`` if absent; the unique constraint settles races."""
        try:
            with transaction.atomic():
                ImageProperty.objects.create(image=self, name=IMPORT_LOCK, value=task_id)
        except IntegrityError:
            return False
        return True

    def release_import_lock(self, task_id: str) -> bool:
        """Remove the lock only if it is still ours (a stale-lock breaker may have taken it)."""
        deleted, _ = ImageProperty.objects.filter(
            image=self, name=IMPORT_LOCK, value=task_id
        ).delete()
        return bool(deleted)

    def holds_import_lock(self, task_id: str) -> bool:
        """Whether import ``task_id`` still holds the lock, locking it (inside a transaction)
        so that nothing breaks it before the caller is done."""
        return (
            ImageProperty.objects.select_for_update()
            .filter(image=self, name=IMPORT_LOCK, value=task_id)
            .exists()
        )

    def import_lock_holder(self) -> str | None:
        row = ImageProperty.objects.filter(image=self, name=IMPORT_LOCK).first()
        return row.value if row else None

    def set_system_property(self, name: str, value: str) -> None:
        ImageProperty.objects.update_or_create(image=self, name=name, defaults={"value": value})

    def store_names_in(self, name: str) -> list[str]:
        """The store names a system property lists (``os_glance_importing_to_stores``,
        ``os_glance_failed_import``), comma-separated as Glance writes them."""
        return split_list(self.property_dict().get(name) or "")

    def mark_deleted(self) -> None:
        self.transition_to(ImageStatus.DELETED)
        self.deleted = True
        self.deleted_at = timezone.now()
        self.touch()

    def is_visible_to(self, project_id: str | None, is_admin: bool) -> bool:
        if is_admin or self.owner is None or self.owner == project_id:
            return True
        if self.visibility in (Visibility.PUBLIC, Visibility.COMMUNITY):
            return True
        return self.visibility == Visibility.SHARED and self.member_row(project_id) is not None

    def policy_target(self, credentials) -> dict[str, object]:
        """The target Glance's policy checks see for this image (internals §6.2)."""
        project_id = credentials.project_id
        shared_with_caller = (
            self.visibility == Visibility.SHARED
            and self.owner != project_id
            and self.member_row(project_id) is not None
        )
        return {
            **self.property_dict(),
            "id": self.id,
            "image_id": self.id,
            "owner": self.owner,
            "project_id": self.owner,
            "member_id": project_id if shared_with_caller else None,
            "member": project_id if shared_with_caller else None,
            "visibility": self.visibility,
            "status": self.status,
            "name": self.name,
            "protected": self.protected,
            "os_hidden": self.os_hidden,
            "disk_format": self.disk_format,
            "container_format": self.container_format,
            "size": self.size,
            "virtual_size": self.virtual_size,
            "checksum": self.checksum,
            "os_hash_algo": self.os_hash_algo,
            "os_hash_value": self.os_hash_value,
            "min_disk": self.min_disk,
            "min_ram": self.min_ram,
            "tags": self.tag_list(),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }

    # --- related data, read from prefetched caches when present ----------------------------
    def property_dict(self) -> dict[str, str]:
        if hasattr(self, "loaded_properties"):
            return dict(self.loaded_properties)
        return {prop.name: prop.value for prop in self.properties.all()}

    def location_list(self) -> list[ImageLocation]:
        if hasattr(self, "loaded_locations"):
            return list(self.loaded_locations)
        return list(self.locations.order_by("created_at"))

    def tag_list(self) -> list[str]:
        if hasattr(self, "loaded_tags"):
            return list(self.loaded_tags)
        return sorted(tag.value for tag in self.tags.all())

    def member_row(self, project_id: str | None) -> ImageMember | None:
        if project_id is None:
            return None
        for member in self.members.all():
            if member.member_id == project_id:
                return member
        return None


class ImageProperty(models.Model):
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="properties")
    name = models.CharField(max_length=255)
    value = models.TextField(blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["image", "name"], name="unique_image_property")
        ]
        # On md5(value), not value: a btree entry holds at most ~2.7 KB on PostgreSQL, and Glance
        # takes far longer values. Filters compare the md5 too (see ``property_equals``).
        indexes = [models.Index("name", MD5("value"), name="image_property_name_value_md5")]
        verbose_name_plural = "properties"

    def __str__(self) -> str:
        return f"{self.name}={self.value}"

    @staticmethod
    def property_equals(name: str, value: str) -> models.Q:
        """Rows of property ``name`` equal to ``value``, through the (name, md5(value)) index."""
        return models.Q(name=name, value=value) & models.Q(
            models.lookups.Exact(MD5("value"), MD5(models.Value(value)))
        )


class ImageTag(models.Model):
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="tags")
    value = models.CharField(max_length=255)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["image", "value"], name="unique_image_tag")]
        indexes = [models.Index(fields=["value"])]

    def __str__(self) -> str:
        return self.value


class ImageMember(models.Model):
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="members")
    member_id = models.CharField(max_length=255, db_index=True)
    status = models.CharField(
        max_length=20, choices=MemberStatus.choices, default=MemberStatus.PENDING
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["image", "member_id"], name="unique_image_member")
        ]

    def __str__(self) -> str:
        return f"{self.member_id} ({self.status})"


class ImageLocation(models.Model):
    """Where an image's bytes are kept: one row per store holding a copy."""

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="locations")
    store = models.CharField(max_length=255)
    url = models.TextField()
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["image", "store"], name="unique_image_store")
        ]

    def __str__(self) -> str:
        return f"{self.store}: {self.url}"


class StagedData(models.Model):
    """What ``PUT /stage`` learned while the bytes went by, kept for the import to reuse."""

    image = models.OneToOneField(
        Image, primary_key=True, on_delete=models.CASCADE, related_name="staged"
    )
    size = models.BigIntegerField()
    checksum = models.CharField(max_length=32)
    os_hash_algo = models.CharField(max_length=64)
    os_hash_value = models.CharField(max_length=128)
    detected_format = models.CharField(max_length=32, blank=True)
    virtual_size = models.BigIntegerField(null=True, blank=True)
    format_problem = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "staged data"

    def __str__(self) -> str:
        return f"{self.image_id}: {self.size} bytes"


class PropertyProtection(models.Model):
    """One section of Glance's ``property_protection_file``, in file order.

    ``pattern`` is a Python regular expression applied with search semantics to a custom
    property's name; the first section that matches decides (``images/protections.py``). Each
    ``*_rule`` holds, in the ``roles`` format, comma-separated lower-case role names (``@``
    everyone, ``!`` or empty no one), in the ``policies`` format one policy rule name. No rows:
    the feature is off, as in Glance without a protection file.
    """

    class RuleFormat(models.TextChoices):
        ROLES = "roles"
        POLICIES = "policies"

    position = models.PositiveIntegerField(unique=True)
    pattern = models.TextField()
    rule_format = models.CharField(
        max_length=16, choices=RuleFormat.choices, default=RuleFormat.ROLES
    )
    # Named *_rule: a field called `delete` would hide Model.delete().
    create_rule = models.CharField(max_length=1024, blank=True)
    read_rule = models.CharField(max_length=1024, blank=True)
    update_rule = models.CharField(max_length=1024, blank=True)
    delete_rule = models.CharField(max_length=1024, blank=True)

    class Meta:
        ordering = ["position"]

    def __str__(self) -> str:
        return f"[{self.pattern}] ({self.rule_format})"

    def rule_for(self, operation: str) -> str:
        return getattr(self, f"{operation}_rule")
