"""Import settings in the operator console: one row, the plugin chain as ordered rows.

Deleting the row brings back the environment settings. Accepted imports keep the settings they
were accepted with (a snapshot in the task's input).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse

from imageservice.admin_site import OperatorPermissions, operator_site
from importplugins.chain import installed_plugins
from importplugins.conversion import OUTPUT_FORMATS
from importplugins.import_settings import LIST_FIELDS, environment_values, glance_list
from importplugins.inject_metadata import parse_inject_properties
from importplugins.models import ImportPluginStep, ImportSettings


def plugin_choices() -> list[tuple[str, str]]:
    return [
        (name, f"{name} — {description}" if description else name)
        for name, description in installed_plugins().items()
    ]


class ImportPluginStepForm(forms.ModelForm):
    name = forms.ChoiceField(choices=plugin_choices, label="plugin")

    class Meta:
        model = ImportPluginStep
        fields = ("position", "name")


class ImportPluginStepInline(OperatorPermissions, admin.TabularInline):
    model = ImportPluginStep
    form = ImportPluginStepForm
    extra = 1
    verbose_name = "plugin"
    verbose_name_plural = "plugin chain (runs in position order)"


class ImportSettingsForm(forms.ModelForm):
    inject_metadata_properties = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        label="Inject metadata properties",
        help_text="One key:value pair a line (or comma-separated); keys may not start with "
        "os_glance.",
    )
    image_conversion_output_format = forms.ChoiceField(
        choices=[(name, name) for name in sorted(OUTPUT_FORMATS)]
    )

    class Meta:
        model = ImportSettings
        fields = (
            "inject_metadata_properties",
            "ignore_user_roles",
            "image_conversion_output_format",
            *(name for name in LIST_FIELDS if name != "ignore_user_roles"),
        )
        widgets = {name: forms.TextInput(attrs={"size": 60}) for name in LIST_FIELDS}
        help_texts = {name: "Comma-separated; empty means none." for name in LIST_FIELDS[1:]}

    def clean_inject_metadata_properties(self) -> str:
        lines = self.cleaned_data["inject_metadata_properties"].splitlines()
        value = ",".join(line.strip().rstrip(",") for line in lines if line.strip())
        try:
            parse_inject_properties(value)
        except ValueError as error:
            raise forms.ValidationError(str(error)) from error
        return value

    def _clean_list(self, name: str) -> str:
        return ",".join(glance_list(self.cleaned_data[name]))

    def clean(self):
        cleaned = super().clean()
        for name in LIST_FIELDS:
            if name in cleaned:
                cleaned[name] = self._clean_list(name)
        return cleaned

    def get_initial_for_field(self, field, field_name):
        value = super().get_initial_for_field(field, field_name)
        if field_name == "inject_metadata_properties" and value:
            return "\n".join(item.strip() for item in value.split(","))
        return value


@admin.register(ImportSettings, site=operator_site)
class ImportSettingsAdmin(OperatorPermissions, admin.ModelAdmin):
    form = ImportSettingsForm
    inlines = [ImportPluginStepInline]
    fieldsets = [
        (
            "Plugins",
            {
                "fields": (
                    "inject_metadata_properties",
                    "ignore_user_roles",
                    "image_conversion_output_format",
                )
            },
        ),
        (
            "Web-download filter",
            {"fields": tuple(name for name in LIST_FIELDS if name != "ignore_user_roles")},
        ),
    ]

    def get_changeform_initial_data(self, request: HttpRequest) -> dict:
        # The add form starts from the environment values in force.
        values = environment_values()
        initial = {name: ",".join(getattr(values, name)) for name in LIST_FIELDS}
        initial["inject_metadata_properties"] = values.inject_metadata_properties
        initial["image_conversion_output_format"] = values.image_conversion_output_format
        return initial

    def add_view(self, request: HttpRequest, form_url="", extra_context=None):
        # One row: once it exists, "add" edits it (not a has_add_permission query, which the
        # console's sidebar would run on every page).
        row = ImportSettings.objects.first()
        if row is not None:
            return HttpResponseRedirect(
                reverse("admin:importplugins_importsettings_change", args=[row.pk])
            )
        return super().add_view(request, form_url, extra_context)

    def changelist_view(self, request: HttpRequest, extra_context=None):
        # One row: go straight to it (or to the add form while the environment applies).
        row = ImportSettings.objects.first()
        if row is None:
            return HttpResponseRedirect(reverse("admin:importplugins_importsettings_add"))
        return HttpResponseRedirect(
            reverse("admin:importplugins_importsettings_change", args=[row.pk])
        )
