"""The operator console: Django's admin, opened to active users holding Keystone's ``admin`` role.

The role is the only gate. ``is_staff``, ``is_superuser`` and Django's model permissions play no
part, so granting or removing the role in the console (or with ``ensure_user``) is all it takes.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.http import HttpRequest
from django.urls import reverse

from imageservice.dashboard import dashboard
from imageservice.policy_admin import operator_urls

OPERATOR_ROLE = "admin"


def is_operator(request: HttpRequest) -> bool:
    """True when the request's user may use the console; asked once per request.

    The admin asks for every model on every page (index, sidebar, permission checks), and each
    answer would otherwise be a roles query.
    """
    cached = getattr(request, "_is_operator", None)
    if cached is None:
        user = request.user
        cached = bool(
            user.is_authenticated and user.is_active and OPERATOR_ROLE in user.role_names()
        )
        request._is_operator = cached
    return cached


class OperatorAuthenticationForm(AdminAuthenticationForm):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if settings.AUTH_STRATEGY == "keystone":
            # Read by the Keystone backend from the POST (identity.keystone_console); local
            # accounts ignore it.
            self.fields["domain"] = forms.CharField(
                label="Domain", max_length=255, required=False, initial="Default"
            )

    def confirm_login_allowed(self, user) -> None:
        # Not super(): the admin's own check is is_staff, which is not our gate.
        if not user.is_active or OPERATOR_ROLE not in user.role_names():
            raise forms.ValidationError(
                self.error_messages["invalid_login"],
                code="invalid_login",
                params={"username": self.username_field.verbose_name},
            )


class OperatorAdminSite(admin.AdminSite):
    site_header = "Image service operator console"
    site_title = "Image service"
    index_title = "Operator console"
    login_form = OperatorAuthenticationForm
    login_template = "admin/operator_login.html"

    def has_permission(self, request: HttpRequest) -> bool:
        return is_operator(request)

    def each_context(self, request: HttpRequest) -> dict:
        # "View site" would open the versions document at /: the docs page is what helps.
        return {**super().each_context(request), "site_url": reverse(f"{self.name}:about")}

    def index(self, request: HttpRequest, extra_context: dict | None = None):
        # admin_view has checked the operator already: the figures are computed for them only.
        return super().index(request, {"dashboard": dashboard(), **(extra_context or {})})

    def get_urls(self):
        # Pages that are not about one model: policy and staging.
        return [*operator_urls(self), *super().get_urls()]


def kept_forms(formset) -> list[forms.Form]:
    """The rows an inline formset leaves: existing ones not marked for deletion, and new ones
    that were filled in."""
    return [
        form
        for form in formset.forms
        if (form.instance.pk or form.has_changed())
        and not (formset.can_delete and formset._should_delete_form(form))
    ]


class OperatorPermissions:
    """ModelAdmin mixin: an operator may do everything a ModelAdmin does not switch off itself."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_operator(request)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return is_operator(request)

    def has_add_permission(self, request: HttpRequest, *args) -> bool:
        return is_operator(request)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return is_operator(request)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return is_operator(request)


operator_site = OperatorAdminSite(name="admin")
