"""Property protection rules in the operator console, ordered as the sections of Glance's file.

Saving a rule takes effect at once in this process and within PROPERTY_RULES_CACHE_SECONDS in
the others (images/protections.py).
"""

from __future__ import annotations

import re

from django import forms
from django.contrib import admin

from images.models import PropertyProtection
from imageservice.admin_site import OperatorPermissions, operator_site
from imageservice.config_syntax import split_list
from imageservice.policy.engine import get_policy

OPERATIONS = ("create", "read", "update", "delete")


class PropertyProtectionForm(forms.ModelForm):
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
        return cleaned


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
