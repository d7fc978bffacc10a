"""Property protection rules in the operator console, ordered as the sections of Glance's file.

Saving a rule takes effect at once in this process and within PROPERTY_RULES_CACHE_SECONDS in
the others (images/protections.py).

The first rule turns protections on, and from then on a property no rule matches is denied to
everyone, admins included. So the empty list says what no rules mean, and a save that would make
properties images hold unreadable or immutable for everyone stops once with a preview saying
which, and offers a catch-all rule after the others; saving again goes ahead.
"""

from __future__ import annotations

import hashlib
import re

from django import forms
from django.contrib import admin

from images import protections
from images.models import PropertyProtection
from images.protections import RulePreview, Section
from imageservice.admin_site import OperatorPermissions, operator_site
from imageservice.config_syntax import split_list
from imageservice.policy.engine import get_policy

OPERATIONS = ("create", "read", "update", "delete")


class PropertyProtectionForm(forms.ModelForm):
    add_catch_all = forms.BooleanField(
        required=False,
        label="Add a catch-all rule",
        help_text="Also add a last rule [.*] letting everyone create, read, update and delete, "
        "so properties no other rule matches stay free.",
    )
    # The preview the operator was shown; the same preview posted back means "go ahead".
    preview_seen = forms.CharField(required=False, widget=forms.HiddenInput)

    class Meta:
        model = PropertyProtection
        fields = ["position", "pattern", "rule_format", *(f"{op}_rule" for op in OPERATIONS)]
        help_texts = {
            "pattern": "Regular expression matched anywhere in the name; the first match wins.",
            "create_rule": "Roles format: comma-separated roles, @ for everyone, ! for no one. "
            "Policies format: one policy rule name.",
        }

    def clean_pattern(self) -> str:
        pattern = self.cleaned_data["pattern"]
        try:
            re.compile(pattern)
        except re.error as error:
            raise forms.ValidationError(f"Not a valid regular expression: {error}") from error
        return pattern

    def clean(self) -> dict:
        cleaned = super().clean()
        for operation in OPERATIONS:
            field = f"{operation}_rule"
            problem = _rule_problem(cleaned.get("rule_format"), cleaned.get(field, ""))
            if problem:
                self.add_error(field, problem)
        if not self.errors:
            self._stop_once_for_the_preview(cleaned)
        return cleaned

    def _stop_once_for_the_preview(self, cleaned: dict) -> None:
        self.preview = protections.preview_rules(self._sections_after(cleaned))
        if not self.preview.harmful:
            return
        seen = _fingerprint(self.preview)
        if cleaned.get("preview_seen") == seen:
            return
        # Re-rendered with the fingerprint: the next "Save" is the operator's go-ahead.
        self.data = self.data.copy()
        self.data[self.add_prefix("preview_seen")] = seen
        hint = "" if self.preview.has_catch_all else " Tick “Add a catch-all rule”, or"
        raise forms.ValidationError(
            f"{self.preview.sentence()}{hint} save again to go ahead.", code="preview"
        )

    def _sections_after(self, cleaned: dict) -> list[Section]:
        others = PropertyProtection.objects.exclude(pk=self.instance.pk).order_by("position")
        edited = Section(
            cleaned["pattern"],
            cleaned["rule_format"],
            {op: cleaned.get(f"{op}_rule", "") for op in OPERATIONS},
        )
        ordered = sorted(
            [(row.position, Section.from_row(row)) for row in others]
            + [(cleaned["position"], edited)],
            key=lambda pair: pair[0],
        )
        sections = [section for _, section in ordered]
        if cleaned.get("add_catch_all"):
            everyone = dict.fromkeys(OPERATIONS, protections.EVERYONE)
            sections.append(Section(protections.CATCH_ALL_PATTERN, protections.ROLES, everyone))
        return sections


def _fingerprint(preview: RulePreview) -> str:
    text = repr((sorted(preview.unreadable), sorted(preview.immutable), preview.images))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _rule_problem(rule_format: str | None, value: str) -> str | None:
    value = value.strip()
    if rule_format == PropertyProtection.RuleFormat.POLICIES:
        if not value or "," in value:
            return "The policies format takes exactly one policy rule name."
        if value not in get_policy().rules:
            return f"No policy rule named {value!r}."
        return None
    roles = split_list(value)
    if len(roles) > 1 and ({"@", "!"} & set(roles)):
        return "@ and ! cannot be combined with roles."
    return None


@admin.register(PropertyProtection, site=operator_site)
class PropertyProtectionAdmin(OperatorPermissions, admin.ModelAdmin):
    form = PropertyProtectionForm
    list_display = ["position", "pattern", "rule_format", *(f"{op}_rule" for op in OPERATIONS)]
    list_display_links = ["pattern"]
    list_editable = ["position"]
    ordering = ["position"]
    change_list_template = "admin/images/propertyprotection/change_list.html"

    def save_model(self, request, obj, form, change) -> None:
        protections.save_rule(obj, add_catch_all=form.cleaned_data.get("add_catch_all", False))

    def changelist_view(self, request, extra_context=None):
        rows = list(PropertyProtection.objects.values_list("pattern", flat=True))
        extra = {
            "no_rules": not rows,
            "has_catch_all": any(protections.is_catch_all(pattern) for pattern in rows),
        }
        return super().changelist_view(request, {**(extra_context or {}), **extra})
