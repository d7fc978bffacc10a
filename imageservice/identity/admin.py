"""Projects, users, roles and API tokens in the operator console.

A token's clear text exists only in the response that issues it: the database keeps its digest,
and the page is neither cached nor passed through the session (as a message would be).
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.html import format_html

from imageservice.admin_site import OPERATOR_ROLE, OperatorPermissions, operator_site
from imageservice.identity.models import ApiToken, Project, Role, User
from imageservice.identity.services import issue_token
from imageservice.identity.tokens import forget_token


@admin.register(Project, site=operator_site)
class ProjectAdmin(OperatorPermissions, admin.ModelAdmin):
    list_display = ("name", "id", "description", "user_count")
    search_fields = ("name", "=id")
    readonly_fields = ("id",)
    fields = ("id", "name", "description")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Project]:
        return super().get_queryset(request).annotate(user_count=Count("users"))

    @admin.display(description="users", ordering="user_count")
    def user_count(self, project: Project) -> int:
        return project.user_count


@admin.register(Role, site=operator_site)
class RoleAdmin(OperatorPermissions, admin.ModelAdmin):
    list_display = ("name", "user_count")
    search_fields = ("name",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Role]:
        return super().get_queryset(request).annotate(user_count=Count("users"))

    @admin.display(description="users", ordering="user_count")
    def user_count(self, role: Role) -> int:
        return role.user_count


@admin.register(User, site=operator_site)
class UserAdmin(OperatorPermissions, DjangoUserAdmin):
    list_display = ("username", "project", "roles_display", "is_service", "is_active", "last_login")
    list_select_related = ("project",)
    list_filter = ("is_active", "is_service", "roles")
    search_fields = ("username", "=keystone_id", "email")
    raw_id_fields = ("project",)
    filter_horizontal = ("roles",)
    readonly_fields = ("keystone_id", "tokens_link", "last_login", "date_joined")
    # Keystone's role assignments are the only permissions here; Django's groups, permissions
    # and superuser flag are left out so nobody relies on them.
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Identity", {"fields": ("keystone_id", "project", "roles", "is_service", "is_active")}),
        ("Tokens", {"fields": ("tokens_link",)}),
        ("Personal info", {"fields": ("first_name", "last_name", "email")}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": (
                    "username",
                    "usable_password",
                    "password1",
                    "password2",
                    "project",
                    "roles",
                    "is_service",
                ),
            },
        ),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        return super().get_queryset(request).prefetch_related("roles")

    @admin.display(description="roles")
    def roles_display(self, user: User) -> str:
        return ", ".join(role.name for role in user.roles.all())

    @admin.display(description="tokens")
    def tokens_link(self, user: User) -> str:
        if user.pk is None:
            return "—"
        tokens = reverse("admin:identity_apitoken_changelist")
        issue = reverse("admin:identity_apitoken_add")
        return format_html(
            '<a href="{}?user__id__exact={}">{} usable</a> · '
            '<a href="{}?user={}">Issue a token</a>',
            tokens,
            user.pk,
            user.tokens.usable().count(),
            issue,
            user.pk,
        )

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        user = form.instance
        # ensure_user keeps is_staff in step with the admin role; so does the console.
        is_staff = OPERATOR_ROLE in user.role_names()
        if user.is_staff != is_staff:
            user.is_staff = is_staff
            user.save(update_fields=["is_staff"])
        # Roles or is_active may have changed: this process stops trusting cached tokens now.
        for digest in user.tokens.values_list("digest", flat=True):
            forget_token(digest)


class TokenStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("usable", "Usable"), ("revoked", "Revoked"), ("expired", "Expired")]

    def queryset(self, request, queryset):
        if self.value() == "usable":
            return queryset.usable()
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        if self.value() == "expired":
            return queryset.filter(revoked_at__isnull=True, expires_at__lte=timezone.now())
        return queryset


@admin.register(ApiToken, site=operator_site)
class ApiTokenAdmin(OperatorPermissions, admin.ModelAdmin):
    list_display = (
        "prefix_display",
        "user",
        "description",
        "state",
        "created_at",
        "expires_at",
        "revoked_at",
    )
    list_select_related = ("user",)
    list_filter = (TokenStateFilter,)
    search_fields = ("user__username", "=prefix", "description")
    raw_id_fields = ("user",)
    actions = ("revoke_tokens",)
    issued_template = "admin/identity/apitoken/issued.html"

    def get_fields(self, request: HttpRequest, obj: ApiToken | None = None):
        if obj is None:
            return ("user", "description", "expires_at")
        return ("prefix_display", "user", "description", "created_at", "expires_at", "revoked_at")

    def get_readonly_fields(self, request: HttpRequest, obj: ApiToken | None = None):
        if obj is None:
            return ()
        return ("prefix_display", "user", "created_at", "revoked_at")

    # Revoking keeps the record of who held which token; rows are never deleted here.
    def has_delete_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        return False

    @admin.display(description="token", ordering="prefix")
    def prefix_display(self, token: ApiToken) -> str:
        return f"{token.prefix}…"

    @admin.display(description="state")
    def state(self, token: ApiToken) -> str:
        if token.revoked_at is not None:
            return "revoked"
        if token.expires_at is not None and token.expires_at <= timezone.now():
            return "expired"
        return "usable"

    def save_model(self, request, obj: ApiToken, form, change) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        issued, raw_token = issue_token(
            obj.user, expires_at=obj.expires_at, description=obj.description
        )
        # The admin logs and links the object it built from the form: make it the issued row.
        for field in ApiToken._meta.concrete_fields:
            setattr(obj, field.attname, getattr(issued, field.attname))
        obj._state.adding, obj._state.db = False, issued._state.db
        obj.issued_raw_token = raw_token

    def response_add(self, request, obj: ApiToken, post_url_continue=None) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Token issued",
            "token": obj,
            "raw_token": obj.issued_raw_token,
            "change_url": reverse("admin:identity_apitoken_change", args=[obj.pk]),
        }
        response = TemplateResponse(request, self.issued_template, context)
        add_never_cache_headers(response)
        return response

    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        revoked = sum(token.revoke() for token in queryset)
        noun = "token" if revoked == 1 else "tokens"
        self.message_user(request, f"{revoked} {noun} revoked.", messages.SUCCESS)
