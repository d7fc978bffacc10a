"""Images in the operator console: find them, fix their metadata, (de)activate and delete them.

Edits of the image and its property, tag and member rows, status changes and deletion go through
``images.services`` as the API's do, with the operator's credentials: a refusal shows the API's
message and nothing is written. The list is built to stay fast on 100k images: no per-row
queries, the owner's project name joined by a subquery, no second full count on filtered pages.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from images import admin_add, services, validation
from images.models import (
    Image,
    ImageLocation,
    ImageMember,
    ImageProperty,
    ImageStatus,
    ImageTag,
    InvalidTransition,
)
from images.protections import PropertyAccess, current_rules
from images.storage import stores
from imageservice.admin_confirm import ConfirmRow, confirm_action, confirmed
from imageservice.admin_projects import ProjectField, known_projects, project_names
from imageservice.admin_site import OperatorPermissions, kept_forms, operator_site
from imageservice.audit.admin import audit_trail_link
from imageservice.errors import GlanceError
from imageservice.identity import keystone_names
from imageservice.identity.credentials import Credentials
from imageservice.identity.models import Project
from tasks.services import retryable_task

GIB = 1024**3
SYSTEM_PREFIX = "os_glance"
# A confirmation page lists every image it acts on; more than this is a job for a script.
MAX_CONFIRMED = 500


# --- list filters ------------------------------------------------------------------------------


class DeletedFilter(admin.SimpleListFilter):
    """Deleted rows stay in the table (their ids are reserved); the console hides them unless
    asked, as the API does."""

    title = "deleted"
    parameter_name = "deleted"

    def lookups(self, request, model_admin):
        return [("yes", "Deleted only"), ("all", "All")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(deleted=True)
        if self.value() == "all":
            return queryset
        return queryset.filter(deleted=False)

    def choices(self, changelist):
        yield {
            "selected": self.value() is None,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": "Not deleted",
        }
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }


class OwnerFilter(admin.SimpleListFilter):
    title = "owner"
    parameter_name = "owner"

    def lookups(self, request, model_admin):
        return known_projects()

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(owner=self.value())
        return queryset


class SizeFilter(admin.SimpleListFilter):
    title = "size"
    parameter_name = "size"
    BUCKETS = {
        "none": ("No data", Q(size__isnull=True)),
        "small": ("Under 1 GiB", Q(size__lt=GIB)),
        "medium": ("1–10 GiB", Q(size__gte=GIB, size__lt=10 * GIB)),
        "large": ("10 GiB and more", Q(size__gte=10 * GIB)),
    }

    def lookups(self, request, model_admin):
        return [(key, title) for key, (title, _) in self.BUCKETS.items()]

    def queryset(self, request, queryset):
        bucket = self.BUCKETS.get(self.value() or "")
        return queryset.filter(bucket[1]) if bucket else queryset


class StoreFilter(admin.SimpleListFilter):
    """Stores come from the settings, not from a DISTINCT over every location row."""

    title = "store"
    parameter_name = "store"

    def lookups(self, request, model_admin):
        return [(name, name) for name in stores.all_stores()] + [("-", "No store")]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        if self.value() == "-":
            return queryset.exclude(Exists(ImageLocation.objects.filter(image=OuterRef("pk"))))
        held = ImageLocation.objects.filter(image=OuterRef("pk"), store=self.value())
        return queryset.filter(Exists(held))


class WaitingFilter(admin.SimpleListFilter):
    """Images that should have moved on: the dashboard's "waiting" and "stuck" figures."""

    title = "waiting"
    parameter_name = "waiting"

    def lookups(self, request, model_admin):
        hours = settings.DASHBOARD_WAITING_SECONDS / 3600
        return [
            ("old", f"Queued or uploading for over {hours:g} h"),
            ("stuck", "Upload stopped (stale)"),
        ]

    def queryset(self, request, queryset):
        if self.value() == "old":
            return queryset.waiting_for_data(timedelta(seconds=settings.DASHBOARD_WAITING_SECONDS))
        if self.value() == "stuck":
            return queryset.stale_uploads()
        return queryset


# --- inlines -----------------------------------------------------------------------------------


def operator_access(request: HttpRequest) -> PropertyAccess:
    """The operator's property protections: console edits run as that admin user, and
    protections have no admin bypass."""
    if not hasattr(request, "_operator_access"):
        credentials = Credentials.for_user(request.user)
        request._operator_access = PropertyAccess(current_rules(), credentials)
    return request._operator_access


class ImageRowsFormSet(forms.BaseInlineFormSet):
    """Rows of one image collection, written by the ModelAdmin through ``images.services``.

    ``wanted()`` is the whole collection the rows leave; ``check()`` runs the service's rules
    on it, so a refusal shows here, before anything is written.
    """

    def __init__(self, *args, access: PropertyAccess, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.access = access

    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        try:
            self.check(self.wanted())
        except GlanceError as error:
            raise ValidationError(error.message) from error


class PropertyFormSet(ImageRowsFormSet):
    def wanted(self) -> dict[str, str]:
        # os_glance_* rows are not in the formset: they stay as the import machinery left them.
        system = {
            name: value
            for name, value in self.instance.property_dict().items()
            if name.startswith(SYSTEM_PREFIX)
        }
        rows = {form.cleaned_data["name"]: form.cleaned_data["value"] for form in kept_forms(self)}
        return {**system, **rows}

    def check(self, wanted: dict[str, str]) -> None:
        services.check_property_changes(self.instance, wanted, self.access)


class TagFormSet(ImageRowsFormSet):
    def wanted(self) -> set[str]:
        return {form.cleaned_data["value"] for form in kept_forms(self)}

    def check(self, wanted: set[str]) -> None:
        validation.check_tag_quota(len(wanted))


class MemberFormSet(ImageRowsFormSet):
    def wanted(self) -> dict[str, str]:
        return {
            form.cleaned_data["member_id"]: form.cleaned_data["status"] for form in kept_forms(self)
        }

    def check(self, wanted: dict[str, str]) -> None:
        # Checked against the visibility the image form is about to save.
        services.check_member_changes(self.instance, wanted)


class ImageChildInline(OperatorPermissions, admin.TabularInline):
    """Rows of a deleted image are gone with it; nothing is added back to one."""

    def has_add_permission(self, request: HttpRequest, obj: Image | None = None) -> bool:
        return super().has_add_permission(request, obj) and not (obj and obj.deleted)

    def has_change_permission(self, request: HttpRequest, obj: Image | None = None) -> bool:
        return super().has_change_permission(request, obj) and not (obj and obj.deleted)


class PropertyInline(ImageChildInline):
    model = ImageProperty
    formset = PropertyFormSet
    fields = ("name", "value")
    extra = 1
    verbose_name = "custom property"
    verbose_name_plural = "custom properties"
    # Values are short strings in practice; a one-line box keeps the rows key/value-shaped.
    formfield_overrides = {models.TextField: {"widget": forms.TextInput(attrs={"size": 60})}}

    def get_queryset(self, request):
        # os_glance_* rows belong to the import machinery and are shown read-only on the image.
        return super().get_queryset(request).exclude(name__startswith=SYSTEM_PREFIX)


class TagInline(ImageChildInline):
    model = ImageTag
    formset = TagFormSet
    fields = ("value",)
    extra = 1


class MemberForm(forms.ModelForm):
    class Meta:
        model = ImageMember
        fields = ("member_id", "status")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["member_id"] = ProjectField(
            label="member (project)", stored=self.instance.member_id or None
        )


class MemberInline(ImageChildInline):
    model = ImageMember
    form = MemberForm
    formset = MemberFormSet
    fields = ("member_id", "status", "created_at")
    readonly_fields = ("created_at",)
    extra = 0


# --- the image ---------------------------------------------------------------------------------


class ImageForm(forms.ModelForm):
    min_disk = forms.IntegerField(min_value=0, max_value=validation.MAX_INT)
    min_ram = forms.IntegerField(min_value=0, max_value=validation.MAX_INT)

    class Meta:
        model = Image
        fields = (
            "name",
            "visibility",
            "owner",
            "protected",
            "os_hidden",
            "disk_format",
            "container_format",
            "min_disk",
            "min_ram",
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "owner" in self.fields:
            self.fields["owner"] = ProjectField(
                required=False,
                stored=self.instance.owner,
                help_text="A project's name or ID; empty for no owner.",
            )
        # Read at form time: the accepted formats are operator settings.
        for name, allowed in (
            ("disk_format", settings.DISK_FORMATS),
            ("container_format", settings.CONTAINER_FORMATS),
        ):
            if name in self.fields:
                current = getattr(self.instance, name)
                values = [*allowed, *([current] if current and current not in allowed else [])]
                self.fields[name] = forms.TypedChoiceField(
                    choices=[("", "—"), *((value, value) for value in values)],
                    required=False,
                    empty_value=None,
                )

    def clean_name(self) -> str | None:
        # The API distinguishes an unset name (null) from an empty one; a blank box means unset.
        return self.cleaned_data["name"] or None


@admin.register(Image, site=operator_site)
class ImageAdmin(OperatorPermissions, admin.ModelAdmin):
    form = ImageForm
    list_display = (
        "short_id",
        "name_display",
        "status_display",
        "owner_display",
        "size_display",
        "format_display",
        "visibility",
        "tags_display",
        "created_display",
    )
    list_display_links = ("short_id", "name_display")
    list_filter = (
        "status",
        "visibility",
        OwnerFilter,
        SizeFilter,
        StoreFilter,
        WaitingFilter,
        DeletedFilter,
    )
    search_fields = ("name",)
    search_help_text = (
        "Name or owner project name contains the text, or a tag, ID, owner ID, checksum or "
        "hash equals it."
    )
    ordering = ("-created_at", "-id")
    list_per_page = 50
    show_full_result_count = False
    actions = ("deactivate", "reactivate", "delete_images")
    inlines = (PropertyInline, TagInline, MemberInline)
    readonly_fields = (
        "id",
        "status",
        "size",
        "virtual_size",
        "checksum",
        "os_hash_algo",
        "os_hash_value",
        "locations_display",
        "system_properties",
        "created_at",
        "updated_at",
        "deleted",
        "deleted_at",
        "audit_trail",
    )
    fieldsets = (
        (None, {"fields": ("id", "name", "status", "visibility", "owner")}),
        ("Flags", {"fields": ("protected", "os_hidden")}),
        (
            "Data",
            {
                "fields": (
                    "disk_format",
                    "container_format",
                    "min_disk",
                    "min_ram",
                    "size",
                    "virtual_size",
                    "checksum",
                    ("os_hash_algo", "os_hash_value"),
                    "locations_display",
                )
            },
        ),
        (
            "Record",
            {
                "fields": (
                    "system_properties",
                    ("created_at", "updated_at"),
                    ("deleted", "deleted_at"),
                    "audit_trail",
                )
            },
        ),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Image]:
        # One query for the page's tags, whatever its length.
        return super().get_queryset(request).prefetch_related("tags")

    def get_changelist_instance(self, request: HttpRequest):
        # Owner names for the page only, in one query: a subquery in the list's query would run
        # for every matching row before SQLite sorts and cuts the page.
        changelist = super().get_changelist_instance(request)
        name_owners(changelist.result_list)
        return changelist

    def get_search_results(self, request, queryset, search_term):
        # Exact matches on indexed columns, so pasting an id or a hash stays an index lookup.
        term = search_term.strip()
        if not term:
            return queryset, False
        matches = (
            Q(name__icontains=term)
            | Q(pk=term)
            | Q(owner=term)
            | Q(owner__in=_projects_named_like(term))
            # Uncorrelated, so evaluated once through the tag index, not once per image.
            | Q(pk__in=ImageTag.objects.filter(value=term).values("image_id"))
            | Q(checksum=term)
            | Q(os_hash_value=term)
        )
        return queryset.filter(matches), False

    # "Add image" is a page whose script creates and uploads through the API itself
    # (images.admin_add), which validates the body and applies the policy.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and admin_add.console_can_add_images()

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        return admin_add.add_view(request, self.admin_site)

    def add_token_view(self, request: HttpRequest):
        if not self.has_add_permission(request):
            raise PermissionDenied
        return admin_add.token_view(request)

    def get_urls(self):
        token = self.admin_site.admin_view(self.add_token_view)
        return [path("add/token/", token, name="images_image_add_token"), *super().get_urls()]

    def has_change_permission(self, request: HttpRequest, obj: Image | None = None) -> bool:
        return super().has_change_permission(request, obj) and not (obj and obj.deleted)

    # Deletion is the 'delete' action through the service, never the admin's row delete.
    def has_delete_permission(self, request: HttpRequest, obj: Image | None = None) -> bool:
        return False

    @admin.display(description="id", ordering="id")
    def short_id(self, image: Image) -> str:
        # The first block of the UUID tells images apart on a page; the full id is the title.
        return format_html('<span title="{}">{}</span>', image.id, image.id[:8])

    @admin.display(description="name", ordering="name")
    def name_display(self, image: Image) -> str:
        # Protected is marked beside the name: a column of its own would not fit the line.
        lock = mark_safe(' <span class="badge image-protected">protected</span>')
        return format_html(
            '<span class="image-name" title="{0}">{0}</span>{1}',
            image.name or "—",
            lock if image.protected else "",
        )

    @admin.display(description="format", ordering="disk_format")
    def format_display(self, image: Image) -> str:
        return image.disk_format or "—"

    @admin.display(description="status", ordering="status")
    def status_display(self, image: Image) -> str:
        return status_badge(image.status)

    @admin.display(description="owner", ordering="owner")
    def owner_display(self, image: Image) -> str:
        return getattr(image, "owner_name", None) or image.owner or "—"

    @admin.display(description="size", ordering="size")
    def size_display(self, image: Image) -> str:
        return "—" if image.size is None else filesizeformat(image.size)

    @admin.display(description="tags")
    def tags_display(self, image: Image) -> str:
        tags = sorted(tag.value for tag in image.tags.all())
        return format_html('<span class="image-tags" title="{0}">{0}</span>', ", ".join(tags))

    @admin.display(description="created", ordering="created_at")
    def created_display(self, image: Image) -> str:
        return format_html(
            '<span title="{}">{}</span>',
            image.created_at.isoformat(timespec="seconds"),
            image.created_at.strftime("%Y-%m-%d"),
        )

    @admin.display(description="locations")
    def locations_display(self, image: Image) -> str:
        rows = image.locations.order_by("created_at").values_list("store", "url")
        return format_html_join("\n", "<div><b>{}</b>: {}</div>", rows) or "—"

    @admin.display(description="audit trail")
    def audit_trail(self, image: Image) -> str:
        return audit_trail_link("Events of this image", image_id=image.id)

    @admin.display(description="system properties")
    def system_properties(self, image: Image) -> str:
        rows = image.properties.filter(name__startswith=SYSTEM_PREFIX).values_list("name", "value")
        return format_html_join("\n", "<div>{} = {}</div>", rows) or "—"

    # --- saving through the API's service functions -----------------------------------------

    def get_formset_kwargs(self, request, obj, inline, prefix):
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        return {**kwargs, "access": operator_access(request)}

    def save_model(self, request, obj, form, change) -> None:
        # Nothing yet: save_related writes the image together with its rows.
        pass

    def save_formset(self, request, form, formset, change) -> None:
        # commit=False writes nothing: it only records the row changes for the history.
        formset.save(commit=False)

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        wanted = {formset.prefix: formset.wanted() for formset in formsets}
        # As stored: validating the form already changed form.instance in memory.
        image = Image.objects.get(pk=form.instance.pk)
        services.update_image(
            image,
            form.cleaned_data,
            wanted.get("properties", image.property_dict()),
            wanted.get("tags", set(image.tag_list())),
            operator_access(request),
        )
        if "members" in wanted:
            services.change_members(image, wanted["members"])

    # --- actions through the API's service functions, each after a confirmation ----------

    @admin.action(description="Deactivate selected images…", permissions=["change"])
    def deactivate(self, request: HttpRequest, queryset: QuerySet[Image]):
        return self._confirmed_or_ask(
            request,
            queryset,
            "deactivate",
            lambda image: _status_refusal(image, ImageStatus.ACTIVE, ImageStatus.DEACTIVATED),
            services.deactivate_image,
            "deactivated",
        )

    @admin.action(description="Reactivate selected images…", permissions=["change"])
    def reactivate(self, request: HttpRequest, queryset: QuerySet[Image]):
        return self._confirmed_or_ask(
            request,
            queryset,
            "reactivate",
            lambda image: _status_refusal(image, ImageStatus.DEACTIVATED, ImageStatus.ACTIVE),
            services.reactivate_image,
            "reactivated",
        )

    @admin.action(description="Delete selected images…", permissions=["change"])
    def delete_images(self, request: HttpRequest, queryset: QuerySet[Image]):
        return self._confirmed_or_ask(
            request,
            queryset,
            "delete",
            lambda image: "protected" if image.protected else None,
            services.delete_image,
            "deleted",
        )

    def _confirmed_or_ask(
        self,
        request: HttpRequest,
        queryset: QuerySet[Image],
        verb: str,
        refusal: Callable[[Image], str | None],
        operation: Callable[[Image], None],
        done: str,
    ) -> TemplateResponse | None:
        images = list(queryset.filter(deleted=False)[: MAX_CONFIRMED + 1])
        name_owners(images)
        if len(images) > MAX_CONFIRMED:
            self.message_user(
                request,
                f"Select at most {MAX_CONFIRMED} images at a time; nothing was changed.",
                messages.ERROR,
            )
            return None
        if confirmed(request):
            self._apply(request, images, operation, done)
            return None
        changelist = reverse("admin:images_image_changelist")
        rows = [
            ConfirmRow(
                image.id,
                (
                    image.id,
                    image.name or "—",
                    image.status,
                    self.owner_display(image),
                    self.size_display(image),
                    "yes" if image.protected else "no",
                ),
                refusal(image),
            )
            for image in images
        ]
        noun = "image" if len(rows) == 1 else "images"
        return confirm_action(
            request,
            self.admin_site,
            title=f"{verb.capitalize()} {len(rows)} {noun}",
            question=f"Are you sure you want to {verb} these {noun}?"
            + (" Their data is removed from every store." if verb == "delete" else ""),
            columns=("ID", "Name", "Status", "Owner", "Size", "Protected"),
            rows=rows,
            button=f"Yes, {verb}",
            action=request.POST.get("action"),
            post_to=changelist,
            back_to=changelist,
        )

    def _apply(
        self,
        request: HttpRequest,
        images: list[Image],
        operation: Callable[[Image], None],
        done: str,
    ) -> None:
        succeeded = 0
        for image in images:
            try:
                operation(image)
            except GlanceError as refusal:
                self.message_user(request, f"Image {image.id}: {refusal.message}", messages.ERROR)
            except InvalidTransition as refusal:
                self.message_user(request, f"Image {image.id}: {refusal}", messages.ERROR)
            else:
                succeeded += 1
        if succeeded:
            noun = "image" if succeeded == 1 else "images"
            self.message_user(request, f"{succeeded} {noun} {done}.", messages.SUCCESS)

    def changelist_view(self, request, extra_context=None):
        # The model sidebar repeats the index and costs the list a fifth of 1280 px: without
        # it every column fits on one line.
        return super().changelist_view(
            request, {"is_nav_sidebar_enabled": False, **(extra_context or {})}
        )

    # --- the image page: its tasks, and a retry of its failed import -------------------------

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = {
            "tasks_url": reverse("admin:tasks_task_changelist") + f"?image_id={object_id}",
            "retry_task": retryable_task(object_id),
        }
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})


def name_owners(images) -> None:
    """Set ``owner_name`` on each image: its owner project's name, where known."""
    images = list(images)
    names = project_names(image.owner for image in images)
    for image in images:
        image.owner_name = names.get(image.owner)


def _status_refusal(image: Image, source: str, target: str) -> str | None:
    if image.status in (source, target):
        return None
    return f"status is {image.status}"


def _projects_named_like(term: str) -> QuerySet[Project] | list[str]:
    """Ids of the projects whose name contains ``term``: a subquery locally, Keystone's cached
    list in Keystone mode."""
    if keystone_names.keystone_mode():
        lowered = term.lower()
        return [pid for pid, name in keystone_names.project_choices() if lowered in name.lower()]
    return Project.objects.filter(name__icontains=term).values("id")


def status_badge(status: str) -> str:
    """A status as a coloured label (the styles are in admin/base_site.html)."""
    return format_html('<span class="badge badge-{0}">{0}</span>', status)


from images import admin_protections  # noqa: E402, F401  (registers the protection rules)
