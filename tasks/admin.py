"""Tasks in the operator console: read-only, with live progress, stuck imports marked, and a
'retry import' (action, or button on the task and image pages) for failed glance-direct imports
whose staged data is still there. The retry runs as the import's original caller
(``tasks.services.retry_import``), after a confirmation page."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, JsonResponse
from django.template.defaultfilters import filesizeformat
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.text import Truncator

from images.models import Image
from imageservice.admin_confirm import ConfirmRow, confirm_action, confirmed
from imageservice.admin_projects import project_names
from imageservice.admin_site import OperatorPermissions, is_operator, operator_site
from imageservice.audit.admin import audit_trail_link
from imageservice.errors import GlanceError
from imageservice.identity import keystone_names
from tasks.models import TERMINAL, Node, Task, TaskStatus
from tasks.services import retry_import, retryable_task

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
        return queryset.stuck() if self.value() == "yes" else queryset


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
        "short_id",
        "method",
        "status_display",
        "progress",
        "image_link",
        "owner_display",
        "user_display",
        "message_display",
        "worker_node",
        "created_display",
    )
    list_display_links = ("short_id",)
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
            {
                "fields": (
                    "id",
                    "type",
                    "method",
                    "status_display",
                    "progress",
                    "image_link",
                    "owner_display",
                )
            },
        ),
        ("Outcome", {"fields": ("message", "result_display")}),
        (
            "Request",
            {"fields": ("user_display", "request_id", "input_display", "audit_trail")},
        ),
        ("Nodes", {"fields": ("api_node", "worker_node")}),
        (
            "Times",
            {"fields": ("created_at", "updated_at", "heartbeat_at", "expires_at", "deleted")},
        ),
    )
    readonly_fields = (
        "id",
        "type",
        "method",
        "status_display",
        "progress",
        "image_link",
        "owner_display",
        "message",
        "result_display",
        "user_display",
        "request_id",
        "input_display",
        "api_node",
        "worker_node",
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

    def get_changelist_instance(self, request: HttpRequest):
        changelist = super().get_changelist_instance(request)
        name_tasks(changelist.result_list)
        return changelist

    def get_object(self, request: HttpRequest, object_id: str, from_field=None):
        task = super().get_object(request, object_id, from_field)
        if task is not None:
            name_tasks([task])
        return task

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(Q(pk=term) | Q(image_id=term) | Q(owner=term)), False

    def get_urls(self):
        progress = self.admin_site.admin_view(self.progress_view)
        retry = self.admin_site.admin_view(self.retry_view)
        return [
            path("progress/", progress, name="tasks_task_progress"),
            path("<str:task_id>/retry/", retry, name="tasks_task_retry"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        # As the image list: the model sidebar would push columns onto second lines.
        return super().changelist_view(
            request, {"is_nav_sidebar_enabled": False, **(extra_context or {})}
        )

    def retry_view(self, request: HttpRequest, task_id: str):
        """The Retry button of the task and image pages: the retry action's confirmation for
        this one task (its "Yes" posts the action to the task list)."""
        queryset = self.get_queryset(request).filter(pk=task_id)
        if not queryset.exists():
            raise Http404(f"No task {task_id}")
        return self._ask_retry(request, queryset)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        task = Task.objects.filter(pk=object_id).first()
        retry = task is not None and task.image_id and retryable_task(task.image_id) == task
        extra = {"retry_url": reverse("admin:tasks_task_retry", args=[object_id]) if retry else ""}
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})

    def progress_view(self, request: HttpRequest) -> JsonResponse:
        """``{"tasks": [...]}``: the tasks named by ``?id=`` (so the page sees them finish), or
        every running one."""
        ids = request.GET.getlist("id")[:PROGRESS_BATCH]
        tasks = Task.objects.filter(pk__in=ids) if ids else Task.objects.filter(status__in=RUNNING)
        tasks = tasks.order_by("-created_at")[:PROGRESS_BATCH]
        return JsonResponse({"tasks": [progress_of(task) for task in tasks]})

    @admin.display(description="id", ordering="id")
    def short_id(self, task: Task) -> str:
        return format_html('<span title="{}">{}</span>', task.id, task.id[:8])

    @admin.display(description="method")
    def method(self, task: Task) -> str:
        return task_method(task) or task.type

    @admin.display(description="status", ordering="status")
    def status_display(self, task: Task) -> str:
        stuck = task.is_stale()
        return format_html(
            '<span class="task-status badge badge-{}{}" data-task="{}">{}</span>',
            "stuck" if stuck else task.status,
            " task-stuck" if stuck else "",
            task.id,
            f"{task.status} (stuck)" if stuck else task.status,
        )

    @admin.display(description="progress")
    def progress(self, task: Task) -> str:
        percent = task.percent
        if task.status in TERMINAL:
            # No bar once it ended: an empty <progress> animates as if work were going on.
            done = "" if percent is None else f"{percent}%"
            return format_html(
                '<span class="task-progress" data-task="{}" data-running="false">'
                '<span class="task-percent">{}</span></span>',
                task.id,
                done or "—",
            )
        bar = (
            format_html('<progress max="100" value="{}"></progress>', percent)
            if percent is not None
            else mark_safe('<progress max="100"></progress>')
        )
        return format_html(
            '<span class="task-progress" data-task="{}" data-running="{}">{} '
            '<span class="task-percent">{}</span></span>',
            task.id,
            "true",
            bar,
            "" if percent is None else f"{percent}%",
        )

    @admin.display(description="image", ordering="image_id")
    def image_link(self, task: Task) -> str:
        if not task.image_id:
            return "—"
        url = reverse("admin:images_image_change", args=[task.image_id])
        name = getattr(task, "image_name", None) or task.image_id[:8]
        return format_html('<a href="{}" title="{}">{}</a>', url, task.image_id, name)

    @admin.display(description="message")
    def message_display(self, task: Task) -> str:
        return format_html(
            '<span class="task-message" data-task="{}" title="{}">{}</span>',
            task.id,
            task.message,
            Truncator(task.message).chars(80),
        )

    # Keystone mode: ids with the names Keystone gives them (looked up once, then cached).
    # Keystone mode: ids with the names Keystone gives them (looked up once, then cached).
    @admin.display(description="owner", ordering="owner")
    def owner_display(self, task: Task) -> str:
        name = getattr(task, "owner_name", None) or keystone_names.project_name(task.owner)
        return _named(task.owner, name)

    @admin.display(description="user")
    def user_display(self, task: Task) -> str:
        name = getattr(task, "user_name", None) or keystone_names.user_name(task.user_id)
        return _named(task.user_id, name)

    @admin.display(description="created", ordering="created_at")
    def created_display(self, task: Task) -> str:
        return task.created_at.strftime("%Y-%m-%d %H:%M")

    @admin.display(description="result")
    def result_display(self, task: Task) -> str:
        return _pretty(task.result)

    @admin.display(description="input")
    def input_display(self, task: Task) -> str:
        return input_table(task.input)

    @admin.action(description="Retry selected failed imports…", permissions=["retry"])
    def retry_imports(self, request: HttpRequest, queryset: QuerySet[Task]):
        if not confirmed(request):
            return self._ask_retry(request, queryset)
        for task in queryset:
            try:
                retried = retry_import(task)
            except GlanceError as refusal:
                self.message_user(request, f"Task {task.id}: {refusal.message}", messages.ERROR)
                continue
            retried.refresh_from_db()
            self.message_user(
                request,
                f"Task {task.id}: retried as task {retried.id} ({retried.status}).",
                messages.SUCCESS,
            )
        return None

    def _ask_retry(self, request: HttpRequest, queryset: QuerySet[Task]):
        tasks = list(queryset.order_by("-created_at", "-id")[:RETRY_BATCH])
        name_tasks(tasks)
        sizes = dict(
            Image.objects.filter(pk__in=[task.image_id for task in tasks]).values_list(
                "id", "staged__size"
            )
        )
        rows = [
            ConfirmRow(
                task.id,
                (
                    task.id,
                    getattr(task, "image_name", None) or task.image_id or "—",
                    self.owner_display(task),
                    self.user_display(task),
                    _size(sizes.get(task.image_id)),
                    task.status,
                ),
                _retry_refusal(task),
            )
            for task in tasks
        ]
        changelist = reverse("admin:tasks_task_changelist")
        return confirm_action(
            request,
            self.admin_site,
            title=f"Retry {len(rows)} import{'' if len(rows) == 1 else 's'}",
            question="Retry these imports with their staged data? Each runs again as the user "
            "and project that started it, with the import settings in force now.",
            columns=("Task", "Image", "Owner", "User", "Staged", "Status"),
            rows=rows,
            button="Yes, retry",
            action="retry_imports",
            post_to=changelist,
            back_to=changelist,
        )


RETRY_BATCH = 100


def name_tasks(tasks) -> None:
    """Give each task its image's name and its owner project's and user's names, in one query
    each for the page. (Subqueries in the list's query would be evaluated for every matching
    row before SQLite sorts and cuts the page: seconds with 100k tasks.)"""
    tasks = list(tasks)
    images = dict(
        Image.objects.filter(pk__in={task.image_id for task in tasks if task.image_id}).values_list(
            "id", "name"
        )
    )
    projects = project_names(task.owner for task in tasks)
    users = dict(
        get_user_model()
        .objects.filter(keystone_id__in={task.user_id for task in tasks if task.user_id})
        .values_list("keystone_id", "username")
    )
    for task in tasks:
        task.image_name = images.get(task.image_id)
        task.owner_name = projects.get(task.owner)
        task.user_name = users.get(task.user_id)


def _size(size: int | None) -> str:
    return "—" if size is None else filesizeformat(size)


def _retry_refusal(task: Task) -> str | None:
    if task.status != TaskStatus.FAILURE:
        return f"the task is {task.status}, not failed"
    if task_method(task) != "glance-direct":
        return "only glance-direct imports can be retried"
    if not task.image_id or retryable_task(task.image_id) != task:
        return "the image has no staged data, or a newer import"
    return None


def task_method(task: Task) -> str | None:
    """The import method the task's request named (``glance-direct``, ``web-download``…)."""
    method = ((task.input or {}).get("import_req") or {}).get("method")
    return method.get("name") if isinstance(method, dict) else None


def input_table(value: object) -> str:
    """A task's input as rows of ``key | value``, nested keys dotted (``import_req.method.name``)
    and lists comma-joined."""
    if not value:
        return "—"
    rows = list(_flattened(value, ""))
    cells = format_html_join(
        "", "<tr><th>{}</th><td><code>{}</code></td></tr>", ((key, text) for key, text in rows)
    )
    return format_html('<table class="task-input">{}</table>', cells)


def _flattened(value: object, prefix: str):
    if isinstance(value, dict) and value:
        for key in sorted(value):
            yield from _flattened(value[key], f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        yield prefix, ", ".join(str(item) for item in value) or "(none)"
    elif isinstance(value, dict):
        yield prefix, "(none)"
    else:
        yield prefix, json.dumps(value) if not isinstance(value, str) else value


def _pretty(value: object) -> str:
    if value is None:
        return "—"
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True))


def _named(object_id: str | None, name: str | None) -> str:
    if not object_id:
        return "—"
    return f"{name} ({object_id})" if name else object_id


@admin.register(Node, site=operator_site)
class NodeAdmin(OperatorPermissions, admin.ModelAdmin):
    """The nodes that registered (``serve`` beats its row); one silent for
    NODE_STALE_SECONDS, or stopped, is shown as not live."""

    list_display = ("name", "role", "live", "host", "pid", "staging_uri", "heartbeat_at")
    list_filter = ("role",)
    ordering = ("name",)
    readonly_fields = (
        "name",
        "role",
        "live",
        "host",
        "pid",
        "staging_uri",
        "started_at",
        "heartbeat_at",
        "stopped_at",
    )
    fields = readonly_fields

    @admin.display(boolean=True)
    def live(self, node: Node) -> bool:
        return node.is_live()

    # Each node writes its own row; the console only shows them.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Node | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Node | None = None) -> bool:
        return False
