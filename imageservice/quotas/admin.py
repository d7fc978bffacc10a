"""Per-project limits in the operator console. Saving and deleting go through
``quotas.services.set_project_limits``, as ``manage.py project_limits`` does."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from imageservice.admin_projects import ProjectField, project_names
from imageservice.admin_site import OperatorPermissions, operator_site
from imageservice.quotas import services
from imageservice.quotas.models import (
    IMAGE_COUNT_TOTAL,
    IMAGE_COUNT_UPLOADING,
    IMAGE_SIZE_TOTAL,
    IMAGE_STAGE_TOTAL,
    LIMIT_NAMES,
    UNLIMITED,
    ProjectLimits,
)


class ProjectLimitsForm(forms.ModelForm):
    class Meta:
        model = ProjectLimits
        fields = ["project", *LIMIT_NAMES]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if "project" in self.fields:
            self.fields["project"] = ProjectField(label="Project")

    def clean(self) -> dict:
        cleaned = super().clean()
        values = [cleaned.get(name) for name in LIMIT_NAMES]
        if all(value is None for value in values):
            raise forms.ValidationError(
                "Set at least one limit; delete this row to give the project the site's defaults."
            )
        for name, value in zip(LIMIT_NAMES, values, strict=True):
            if value is not None and value < UNLIMITED:
                self.add_error(name, "-1 (unlimited) or more.")
        return cleaned


def _shown(value: int | None, default: int) -> str:
    if value is None:
        return f"default ({'unlimited' if default == UNLIMITED else default})"
    return "unlimited" if value == UNLIMITED else str(value)


@admin.register(ProjectLimits, site=operator_site)
class ProjectLimitsAdmin(OperatorPermissions, admin.ModelAdmin):
    form = ProjectLimitsForm
    list_display = [
        "project",
        "project_name",
        "size_total",
        "stage_total",
        "count_total",
        "count_uploading",
    ]
    search_fields = ["project"]
    readonly_fields = ["current_usage"]

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> list[str]:
        # The project is the row's key: a row for another project is a new row.
        return ["project", "current_usage"] if obj else ["current_usage"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ProjectLimits]:
        return super().get_queryset(request).order_by("project")

    def changelist_view(self, request, extra_context=None):
        self._names = project_names(ProjectLimits.objects.values_list("project", flat=True))
        self._defaults = services.default_limits()
        return super().changelist_view(request, extra_context)

    @admin.display(description="name")
    def project_name(self, obj: ProjectLimits) -> str:
        return self._names.get(obj.project, "")

    @admin.display(description="current usage (MiB for sizes)")
    def current_usage(self, obj: ProjectLimits) -> str:
        if not obj.pk:
            return "-"
        rows = services.project_usage(obj.project).items()
        return format_html(
            "<ul>{}</ul>",
            format_html_join("", "<li>{}: {} of {}</li>", ((n, u.usage, u.limit) for n, u in rows)),
        )

    def _column(self, obj: ProjectLimits, name: str) -> str:
        return _shown(getattr(obj, name), self._defaults[name])

    @admin.display(description="image_size_total (MiB)")
    def size_total(self, obj: ProjectLimits) -> str:
        return self._column(obj, IMAGE_SIZE_TOTAL)

    @admin.display(description="image_stage_total (MiB)")
    def stage_total(self, obj: ProjectLimits) -> str:
        return self._column(obj, IMAGE_STAGE_TOTAL)

    @admin.display(description="image_count_total")
    def count_total(self, obj: ProjectLimits) -> str:
        return self._column(obj, IMAGE_COUNT_TOTAL)

    @admin.display(description="image_count_uploading")
    def count_uploading(self, obj: ProjectLimits) -> str:
        return self._column(obj, IMAGE_COUNT_UPLOADING)

    def save_model(self, request, obj, form, change) -> None:
        services.set_project_limits(obj.project, {name: getattr(obj, name) for name in LIMIT_NAMES})

    def delete_model(self, request, obj) -> None:
        services.clear_project_limits(obj.project)

    def delete_queryset(self, request, queryset) -> None:
        for row in queryset:
            services.clear_project_limits(row.project)
