"""The audit trail in the operator console: read-only, filterable, linked from images and tasks."""

from __future__ import annotations

import json

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode

from imageservice.admin_site import OperatorPermissions, operator_site
from imageservice.audit.models import AuditEvent


def audit_trail_link(label: str, **filters: str) -> str:
    """A link to the audit events matching ``filters`` (``image_id=…``, ``task_id=…``)."""
    url = reverse("admin:audit_auditevent_changelist")
    return format_html('<a href="{}?{}">{}</a>', url, urlencode(filters), label)


@admin.register(AuditEvent, site=operator_site)
class AuditEventAdmin(OperatorPermissions, admin.ModelAdmin):
    list_display = ("at", "action", "outcome", "image_link", "who", "project_id", "node")
    list_filter = ("action", "outcome", "project_id", "user_id", "at")
    date_hierarchy = "at"
    search_fields = ("=image_id", "=task_id", "=user_id", "=project_id", "=request_id")
    list_per_page = 50
    show_full_result_count = False
    fields = (
        "at",
        "action",
        "outcome",
        "image_link",
        "task_link",
        "member_id",
        "user_id",
        "project_id",
        "roles",
        "command",
        "request_id",
        "node",
        "changes_display",
        "detail",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        # Only purge_audit removes events, by age: a trail an operator can edit proves nothing.
        return False

    @admin.display(description="who")
    def who(self, event: AuditEvent) -> str:
        return event.who

    @admin.display(description="image")
    def image_link(self, event: AuditEvent) -> str:
        if not event.image_id:
            return "-"
        url = reverse("admin:images_image_change", args=[event.image_id])
        return format_html('<a href="{}">{}</a>', url, event.image_id)

    @admin.display(description="task")
    def task_link(self, event: AuditEvent) -> str:
        if not event.task_id:
            return "-"
        url = reverse("admin:tasks_task_change", args=[event.task_id])
        return format_html('<a href="{}">{}</a>', url, event.task_id)

    @admin.display(description="changes (old → new)")
    def changes_display(self, event: AuditEvent) -> str:
        if not event.changes:
            return "-"
        rows = format_html_join(
            "",
            "<tr><th>{}</th><td>{}</td><td>→</td><td>{}</td></tr>",
            (
                (name, json.dumps(old), json.dumps(new))
                for name, (old, new) in event.changes.items()
            ),
        )
        return format_html("<table>{}</table>", rows)
