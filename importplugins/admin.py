"""Import settings in the operator console: one row, the plugin chain as ordered rows.

The form checks each value with ``import_settings.check_setting`` and saves through
``import_settings.apply``, the same rules and write as ``manage.py load_import_settings``.

Deleting the row brings back the environment settings. Accepted imports keep the settings they
were accepted with (a snapshot in the task's input).

The chain's rows never change by themselves: a new row starts blank (a pre-selected plugin
would be saved with the page), the add page starts from the environment's chain, and the page
shows the chain in force as an ordered list, warning when inject pairs are set but
``inject_image_metadata`` is not in it.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from imageservice.admin_site import OperatorPermissions, operator_site
from importplugins import import_settings
from importplugins.conversion import OUTPUT_FORMATS
from importplugins.import_settings import (
    LIST_FIELDS,
    ImportSettingsValues,
    InvalidImportSettings,
    current,
    environment_values,
    glance_list,
)
from importplugins.models import ImportPluginStep, ImportSettings
from importplugins.registry import installed_plugins

INJECT_PLUGIN = "inject_image_metadata"


def plugin_choices() -> list[tuple[str, str]]:
    # The blank first choice is what a new row shows: left alone, the row is not saved.
    return [
        ("", "— choose a plugin —"),
        *(
            (name, f"{name} — {description}" if description else name)
            for name, description in installed_plugins().items()
        ),
    ]


def inject_warning(plugins: list[str], inject: str) -> str | None:
    """Why the inject pairs would do nothing: set, but their plugin is not in the chain."""
    if inject.strip() and INJECT_PLUGIN not in plugins:
        return (
            f"Inject metadata properties are set, but {INJECT_PLUGIN} is not in the plugin "
            "chain: no import will get them. Add it to the chain, or clear the pairs."
        )
    return None


class ImportPluginStepForm(forms.ModelForm):
    # A plain field behind the select: import_settings.check_setting words the refusal.
    name = forms.CharField(
        label="plugin",
        widget=forms.Select(choices=plugin_choices),
        error_messages={"required": "Choose a plugin, or delete the row."},
    )

    class Meta:
        model = ImportPluginStep
        fields = ("position", "name")

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        try:
            import_settings.check_setting("import_plugins", [name])
        except InvalidImportSettings as error:
            raise forms.ValidationError(str(error)) from error
        return name


class ImportPluginStepFormSet(forms.BaseInlineFormSet):
    def plugin_names(self) -> list[str]:
        """The chain as the rows order it (by position, then as listed): saved rows not marked
        for deletion, new rows filled in, and rows the add page pre-filled from the environment
        (left unchanged, Django does not clean them)."""
        rows = []
        for form in self.forms:
            if self._should_delete_form(form):
                continue
            if form.instance.pk or form.has_changed():
                rows.append((form.cleaned_data["position"], form.cleaned_data["name"]))
            elif form.initial.get("name"):
                rows.append((form.initial["position"], form.initial["name"]))
        return [name for _, name in sorted(rows, key=lambda row: row[0])]


class ImportPluginStepInline(OperatorPermissions, admin.TabularInline):
    model = ImportPluginStep
    form = ImportPluginStepForm
    formset = ImportPluginStepFormSet
    # No empty row: "Add another plugin" adds one, blank.
    extra = 0
    verbose_name = "plugin"
    verbose_name_plural = "plugin chain (runs in position order)"

    def get_extra(self, request, obj=None, **kwargs) -> int:
        # The add page shows the environment's chain as rows to keep, edit or delete.
        return 0 if obj is not None else len(environment_values().import_plugins)


class ImportSettingsForm(forms.ModelForm):
    inject_metadata_properties = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        label="Inject metadata properties",
        help_text="One key:value pair a line (or comma-separated); keys may not start with "
        "os_glance.",
    )
    image_conversion_output_format = forms.CharField(
        widget=forms.Select(choices=[(name, name) for name in sorted(OUTPUT_FORMATS)])
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
        return ",".join(line.strip().rstrip(",") for line in lines if line.strip())

    def clean(self):
        cleaned = super().clean()
        for name, value in list(cleaned.items()):
            try:
                import_settings.check_setting(name, value)
            except InvalidImportSettings as error:
                self.add_error(name, str(error))
        return cleaned

    def settings_values(self, plugins: list[str]) -> ImportSettingsValues:
        cleaned = self.cleaned_data
        return ImportSettingsValues(
            import_plugins=plugins,
            inject_metadata_properties=cleaned["inject_metadata_properties"],
            image_conversion_output_format=cleaned["image_conversion_output_format"],
            source="console",
            **{name: glance_list(cleaned[name]) for name in LIST_FIELDS},
        )

    def get_initial_for_field(self, field, field_name):
        value = super().get_initial_for_field(field, field_name)
        if field_name == "inject_metadata_properties" and value:
            return "\n".join(item.strip() for item in value.split(","))
        return value


@admin.register(ImportSettings, site=operator_site)
class ImportSettingsAdmin(OperatorPermissions, admin.ModelAdmin):
    form = ImportSettingsForm
    inlines = [ImportPluginStepInline]
    readonly_fields = ("effective_chain",)
    fieldsets = [
        ("In force", {"fields": ("effective_chain",)}),
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

    def get_formset_kwargs(self, request, obj, inline, prefix):
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        if obj.pk is None:
            kwargs["initial"] = [
                {"position": position, "name": name}
                for position, name in enumerate(environment_values().import_plugins, start=1)
            ]
        return kwargs

    def save_model(self, request, obj, form, change) -> None:
        # Written together with the chain in save_related, through import_settings.apply().
        obj.pk = ImportSettings.SINGLETON_ID

    def save_formset(self, request, form, formset, change) -> None:
        # commit=False writes nothing: it only records the row changes for the history.
        formset.save(commit=False)

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        [chain] = formsets
        values = form.settings_values(chain.plugin_names())
        import_settings.apply(values)
        warning = inject_warning(values.import_plugins, values.inject_metadata_properties)
        if warning:
            self.message_user(request, warning, messages.WARNING)

    @admin.display(description="plugin chain in force")
    def effective_chain(self, row: ImportSettings | None) -> str:
        values = current()
        where = (
            "saved on this page"
            if values.source == "database"
            else "from the environment (IMAGE_IMPORT_PLUGINS) until this page is saved"
        )
        steps = format_html_join("", "<li>{}</li>", ((name,) for name in values.import_plugins))
        chain = (
            format_html('<ol id="effective-chain">{}</ol>', steps)
            if values.import_plugins
            else mark_safe('<p id="effective-chain">No plugins: imports store the data as is.</p>')
        )
        warning = inject_warning(values.import_plugins, values.inject_metadata_properties)
        shown = format_html('<p class="operator-warning" id="inject-warning">{}</p>', warning)
        return format_html(
            "{}<p>{}, run in this order.</p>{}", chain, where, shown if warning else ""
        )

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
