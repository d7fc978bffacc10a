"""Tasks in the operator console: read-only, with live progress, stuck imports marked, and a
'retry import' action for failed glance-direct imports whose staged data is still there."""

from __future__ import annotations

import json
from datetime import timedelta

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.db.models.functions import Coalesce
from django.http import HttpRequest, JsonResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.text import Truncator

from imageservice.admin_site import OperatorPermissions, is_operator, operator_site
from imageservice.audit.admin import audit_trail_link
from imageservice.errors import GlanceError
from imageservice.identity import keystone_names
from imageservice.identity.credentials import Credentials
from tasks.models import TERMINAL, Task, TaskStatus
from tasks.services import retry_import

RUNNING = (TaskStatus.PENDING, TaskStatus.PROCESSING)
# The progress endpoint answers for at most one page of tasks.
PROGRESS_BATCH = 100


class StuckFilter(admin.SimpleListFilter):
    """The same rule as ``Task.is_stale()``, as a query."""

    title = "stuck"
    parameter_name = "stuck"

    def lookups(self, request, model_admin):
        return [("yes", "Stuck (no heartbeat)")]

    def queryset(self, request, queryset):
        if self.value() != "yes":
            return queryset
        limit = timezone.now() - timedelta(seconds=settings.IMPORT_STALE_SECONDS)
        pending_limit = limit - timedelta(seconds=settings.IMPORT_STALE_SECONDS)
        return queryset.alias(last_beat=Coalesce("heartbeat_at", "updated_at")).filter(
            Q(status=TaskStatus.PROCESSING, last_beat__lt=limit)
            | Q(status=TaskStatus.PENDING, last_beat__lt=pending_limit)
        )


def progress_of(task: Task) -> dict[str, object]:
    return {
        "id": task.id,
        "status": task.status,
        "running": task.status not in TERMINAL,
        "stuck": task.is_stale(),
        "percent": task.percent,
        "bytes_done": task.bytes_done,
        "bytes_total": task.bytes_total,
        "message": task.message,
    }


@admin.register(Task, site=operator_site)
class TaskAdmin(OperatorPermissions, admin.ModelAdmin):
    list_display = (
        "id",
        "type",
        "status_display",
        "progress",
        "image_link",
        "owner_display",
        "message_display",
        "created_at",
        "heartbeat_at",
    )
    list_filter = ("status", StuckFilter, "type")
    search_fields = ("id",)
    search_help_text = "Task ID, image ID or owner equals the text."
    ordering = ("-created_at", "-id")
    list_per_page = 50
    show_full_result_count = False
    actions = ("retry_imports",)
    fieldsets = (
        (
            None,
            {"fields": ("id", "type", "status_display", "progress", "image_link", "owner_display")},
        ),
        ("Outcome", {"fields": ("message", "result_display")}),
        (
            "Request",
            {"fields": ("user_display", "request_id", "input_display", "audit_trail")},
        ),
        (
            "Times",
            {"fields": ("created_at", "updated_at", "heartbeat_at", "expires_at", "deleted")},
        ),
    )
    readonly_fields = (
        "id",
        "type",
        "status_display",
        "progress",
        "image_link",
        "owner_display",
        "message",
        "result_display",
        "user_display",
        "request_id",
        "input_display",
        "created_at",
        "updated_at",
        "heartbeat_at",
        "expires_at",
        "deleted",
        "audit_trail",
    )

    # A task is a record of what happened: the console shows it, only the runner writes it.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Task | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Task | None = None) -> bool:
        return False

    @admin.display(description="audit trail")
    def audit_trail(self, task: Task) -> str:
        return audit_trail_link("Events of this task", task_id=task.id)

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return is_operator(request)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(Q(pk=term) | Q(image_id=term) | Q(owner=term)), False

    def get_urls(self):
        progress = self.admin_site.admin_view(self.progress_view)
        return [path("progress/", progress, name="tasks_task_progress"), *super().get_urls()]

    def progress_view(self, request: HttpRequest) -> JsonResponse:
        """``{"tasks": [...]}``: the tasks named by ``?id=`` (so the page sees them finish), or
        every running one."""
        ids = request.GET.getlist("id")[:PROGRESS_BATCH]
        tasks = Task.objects.filter(pk__in=ids) if ids else Task.objects.filter(status__in=RUNNING)
        tasks = tasks.order_by("-created_at")[:PROGRESS_BATCH]
        return JsonResponse({"tasks": [progress_of(task) for task in tasks]})

    @admin.display(description="status", ordering="status")
    def status_display(self, task: Task) -> str:
        stuck = task.is_stale()
        return format_html(
            '<span class="task-status{}" data-task="{}">{}</span>',
            " task-stuck" if stuck else "",
            task.id,
            f"{task.status} (stuck)" if stuck else task.status,
        )

    @admin.display(description="progress")
    def progress(self, task: Task) -> str:
        percent = task.percent
        bar = (
            format_html('<progress max="100" value="{}"></progress>', percent)
            if percent is not None
            else mark_safe('<progress max="100"></progress>')
        )
        return format_html(
            '<span class="task-progress" data-task="{}" data-running="{}">{} '
            '<span class="task-percent">{}</span></span>',
            task.id,
            "false" if task.status in TERMINAL else "true",
            bar,
            "" if percent is None else f"{percent}%",
        )

    @admin.display(description="image", ordering="image_id")
    def image_link(self, task: Task) -> str:
        if not task.image_id:
            return "—"
        url = reverse("admin:images_image_change", args=[task.image_id])
        return format_html('<a href="{}">{}</a>', url, task.image_id)

    @admin.display(description="message")
    def message_display(self, task: Task) -> str:
        return format_html(
            '<span class="task-message" data-task="{}" title="{}">{}</span>',
            task.id,
            task.message,
            Truncator(task.message).chars(80),
        )

    # Keystone mode: ids with the names Keystone gives them (looked up once, then cached).
    @admin.display(description="owner", ordering="owner")
    def owner_display(self, task: Task) -> str:
        return _named(task.owner, keystone_names.project_name(task.owner))

    @admin.display(description="user")
    def user_display(self, task: Task) -> str:
        return _named(task.user_id, keystone_names.user_name(task.user_id))

    @admin.display(description="result")
    def result_display(self, task: Task) -> str:
        return _pretty(task.result)

    @admin.display(description="input")
    def input_display(self, task: Task) -> str:
        return _pretty(task.input)

    @admin.action(description="Retry selected failed imports", permissions=["retry"])
    def retry_imports(self, request: HttpRequest, queryset: QuerySet[Task]) -> None:
        credentials = Credentials.for_user(request.user)
        for task in queryset:
            try:
                retried = retry_import(task, credentials)
            except GlanceError as refusal:
                self.message_user(request, f"Task {task.id}: {refusal.message}", messages.ERROR)
                continue
            retried.refresh_from_db()
            self.message_user(
                request,
                f"Task {task.id}: retried as task {retried.id} ({retried.status}).",
                messages.SUCCESS,
            )


def _pretty(value: object) -> str:
    if value is None:
        return "—"
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True))


def _named(object_id: str | None, name: str | None) -> str:
    if not object_id:
        return "—"
    return f"{name} ({object_id})" if name else object_id
