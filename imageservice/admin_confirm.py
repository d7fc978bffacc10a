"""Confirmation pages for the console's destructive or costly actions (delete, deactivate,
reactivate, retry, staging cleanup), shaped like Django's own delete confirmation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.contrib import admin
from django.contrib.admin import helpers
from django.http import HttpRequest
from django.template.response import TemplateResponse


@dataclass(frozen=True)
class ConfirmRow:
    """One object on a confirmation page: its id, its cells, and why the action will refuse it
    (protected, not retryable…) or None."""

    pk: str
    cells: Sequence[object]
    refusal: str | None = None


def confirm_action(
    request: HttpRequest,
    site: admin.AdminSite,
    *,
    title: str,
    question: str,
    columns: Sequence[str],
    rows: Sequence[ConfirmRow],
    button: str,
    action: str | None,
    post_to: str,
    back_to: str,
) -> TemplateResponse:
    """The page a destructive or costly action shows before it runs, as Django's own delete
    confirmation: what it applies to, what it will refuse, and a form that sends the same action
    back with ``post=yes`` (``action`` None: a plain POST to ``post_to``)."""
    context = {
        **site.each_context(request),
        "title": title,
        "question": question,
        "columns": columns,
        "rows": rows,
        "refused": [row for row in rows if row.refusal],
        "doable": [row for row in rows if not row.refusal],
        "button": button,
        "action": action,
        "post_to": post_to,
        "back_to": back_to,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/operator_confirm.html", context)


def confirmed(request: HttpRequest) -> bool:
    """True on the POST sent by a confirmation page's "Yes" button."""
    return request.method == "POST" and request.POST.get("post") == "yes"
