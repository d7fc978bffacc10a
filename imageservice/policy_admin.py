"""Operator console pages beside the models: the policy in force with an explain form and a
property protection tester, the staging area with its cleanup, and the service page.

They answer with the same code as their commands: ``explain()`` here serves ``explain_policy``,
and the staging page runs ``tasks.housekeeping.cleanup_staging`` (a dry run to show the orphans
and to confirm, a real run once confirmed), as ``cleanup_staging`` does.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import path, reverse

from images.models import Image
from images.protections import OPERATIONS, PropertyAnswer, explain_property
from images.storage import staging
from imageservice.admin_about import about_view
from imageservice.admin_confirm import ConfirmRow, confirm_action, confirmed
from imageservice.errors import GlanceError
from imageservice.identity.credentials import Credentials
from imageservice.policy.defaults import DEFAULT_RULES
from imageservice.policy.engine import Decision, Policy, get_policy
from tasks.housekeeping import cleanup_staging
from tasks.models import Task

# --- policy ---------------------------------------------------------------------------------


class ExplainError(ValueError):
    """An unknown user, rule or image: the question cannot be asked."""


def rule_source(policy: Policy, name: str) -> str:
    """``default``, ``file`` (a rule only the file defines) or ``override`` (a file rule
    replacing one of Glance's defaults)."""
    source = policy.rules[name][1]
    if source == "file" and name in DEFAULT_RULES:
        return "override"
    return source


def effective_rules(policy: Policy | None = None) -> list[tuple[str, str, str]]:
    """``(name, check string, source)`` for every rule in force, by name."""
    policy = policy or get_policy()
    return [
        (name, check, rule_source(policy, name))
        for name, (check, _) in sorted(policy.rules.items())
    ]


@dataclass(frozen=True)
class Explanation:
    decision: Decision
    source: str  # as rule_source() tells it: default, file or override
    username: str  # who was asked about: a local user name, or Keystone ids and roles
    image_id: str | None

    @property
    def verdict(self) -> str:
        return "allowed" if self.decision.allowed else "denied"

    def lines(self) -> list[str]:
        decision = self.decision
        about = f" on image {self.image_id}" if self.image_id else ""
        checks = decision.deciding_checks or ["(none)"]
        return [
            f"{self.verdict.upper()}: {self.username} for {decision.rule}{about}",
            f"rule: {decision.rule}",
            f"check string: {decision.check_string or '(empty: always allowed)'}",
            f"source: {self.source}",
            "deciding checks:",
            *(f"  {check}" for check in checks),
        ]


def keystone_credentials(user_id: str, project_id: str, roles: str) -> Credentials:
    """Credentials as a Keystone token would give them: ids and comma-separated role names,
    lower-cased as the API does with ``X-Roles``."""
    return Credentials.from_keystone_headers(
        {"HTTP_X_USER_ID": user_id, "HTTP_X_PROJECT_ID": project_id, "HTTP_X_ROLES": roles}
    )


def describe(credentials: Credentials) -> str:
    roles = ",".join(sorted(credentials.roles)) or "none"
    return f"user {credentials.user_id} (project {credentials.project_id}, roles {roles})"


def explain(
    username: str | None,
    rule: str,
    image_id: str | None = None,
    credentials: Credentials | None = None,
) -> Explanation:
    """Whether the local user ``username`` (or, in Keystone mode where users are not ours,
    the given ``credentials``) passes ``rule`` (on the image ``image_id``, else on a target of
    the caller's own project, as the API uses for requests about no image), and why."""
    policy = get_policy()
    if rule not in policy.rules:
        raise ExplainError(f"Unknown policy rule '{rule}'.")
    if credentials is None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise ExplainError(f"Unknown user '{username}'.")
        credentials = Credentials.for_user(user)
    else:
        username = describe(credentials)
    if image_id:
        image = Image.objects.alive().filter(pk=image_id).first()
        if image is None:
            raise ExplainError(f"Unknown image '{image_id}'.")
        target = image.policy_target(credentials)
    else:
        target = {"project_id": credentials.project_id}
    decision = policy.explain(rule, credentials, target)
    return Explanation(decision, rule_source(policy, rule), username, image_id or None)


def _one_kind_of_user(data: dict) -> dict:
    keystone = any(data.get(name, "").strip() for name in ("user_id", "project_id", "roles"))
    if keystone == bool(data.get("user", "").strip()):
        raise forms.ValidationError(
            "Give a local user, or Keystone credentials (user ID, project ID, roles)."
        )
    return data


class ExplainForm(forms.Form):
    user = forms.CharField(label="User", max_length=150, required=False)
    user_id = forms.CharField(label="or Keystone user ID", max_length=64, required=False)
    project_id = forms.CharField(label="Project ID", max_length=64, required=False)
    roles = forms.CharField(
        label="Roles", max_length=255, required=False, help_text="Comma-separated role names."
    )
    action = forms.ChoiceField(label="Action (rule)")
    image = forms.CharField(label="Image ID", max_length=36, required=False)

    def __init__(self, *args, rule_names=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["action"].choices = [(name, name) for name in rule_names]

    def clean(self) -> dict:
        return _one_kind_of_user(super().clean())

    def explain(self) -> Explanation:
        data = {name: value.strip() for name, value in self.cleaned_data.items()}
        credentials = None
        if not data["user"]:
            credentials = keystone_credentials(data["user_id"], data["project_id"], data["roles"])
        return explain(data["user"] or None, data["action"], data["image"], credentials)


class PropertyTestForm(forms.Form):
    """The property tester: may user U create, read, update or delete property P, under the
    property protections in force."""

    prefix = "property"
    user = forms.CharField(label="User", max_length=150, required=False)
    user_id = forms.CharField(label="or Keystone user ID", max_length=64, required=False)
    project_id = forms.CharField(label="Project ID", max_length=64, required=False)
    roles = forms.CharField(
        label="Roles", max_length=255, required=False, help_text="Comma-separated role names."
    )
    operation = forms.ChoiceField(label="Operation", choices=[(op, op) for op in OPERATIONS])
    name = forms.CharField(label="Property", max_length=255)

    def clean(self) -> dict:
        return _one_kind_of_user(super().clean())

    def answer(self) -> tuple[str, PropertyAnswer]:
        data = {name: value.strip() for name, value in self.cleaned_data.items()}
        if data["user"]:
            user = get_user_model().objects.filter(username=data["user"]).first()
            if user is None:
                raise ExplainError(f"Unknown user '{data['user']}'.")
            credentials, who = Credentials.for_user(user), data["user"]
        else:
            credentials = keystone_credentials(data["user_id"], data["project_id"], data["roles"])
            who = describe(credentials)
        return who, explain_property(data["operation"], data["name"], credentials)


def policy_view(request: HttpRequest, site) -> HttpResponse:
    rules = effective_rules()
    names = [name for name, _, _ in rules]
    asked = "action" in request.GET
    form = ExplainForm(request.GET if asked else None, rule_names=names)
    explanation = None
    if asked and form.is_valid():
        try:
            explanation = form.explain()
        except ExplainError as error:
            form.add_error(None, str(error))
    tested = "property-name" in request.GET
    property_form = PropertyTestForm(request.GET if tested else None)
    property_answer = None
    if tested and property_form.is_valid():
        try:
            property_answer = property_form.answer()
        except ExplainError as error:
            property_form.add_error(None, str(error))
    context = {
        **site.each_context(request),
        "title": "Policy",
        "rules": rules,
        "form": form,
        "explanation": explanation,
        "property_form": property_form,
        "property_answer": property_answer,
    }
    return TemplateResponse(request, "admin/policy/policy.html", context)


# --- staging --------------------------------------------------------------------------------


UUID_IN_NAME = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True)
class StagingEntry:
    name: str
    is_dir: bool
    files: int
    size: int
    orphan: bool
    modified: datetime
    # The image (``<id>``, ``.<id>.partial``, ``<id>.<format>``) or task (``.work-<id>``)
    # the entry belongs to, by its name; None when it names neither.
    image: Image | None = None
    task_id: str | None = None

    @property
    def size_display(self) -> str:
        return filesizeformat(self.size)


def staging_overview() -> dict[str, object]:
    """What the staging root holds, and what ``cleanup_staging`` would remove (a dry run)."""
    if (store := staging.staging_store()) is not None:
        return _staging_store_overview(store)
    try:
        root = staging.staging_root()
    except ValueError as error:
        return {"root": None, "problem": str(error), "entries": [], "files": 0, "bytes": 0}
    report = cleanup_staging(dry_run=True)
    would = [text for level, text in report.lines if level <= 1]
    paths = sorted(root.iterdir()) if root.is_dir() else []
    ids = {path.name: _id_in(path.name) for path in paths}
    # One query each for the images and tasks the entries name.
    images = Image.objects.in_bulk([i for i in ids.values() if i], field_name="pk")
    tasks = dict(
        Task.objects.filter(pk__in=[i for i in ids.values() if i]).values_list("id", "image_id")
    )
    entries = []
    for entry in paths:
        files, size = _count(entry)
        orphan = any(text.startswith(f"Would remove {entry.name} (") for text in would)
        modified = datetime.fromtimestamp(entry.lstat().st_mtime, tz=UTC)
        named = ids[entry.name]
        task_id = named if named in tasks else None
        image = images.get(tasks[task_id] if task_id else named)
        entries.append(
            StagingEntry(entry.name, entry.is_dir(), files, size, orphan, modified, image, task_id)
        )
    return {
        "root": root,
        "problem": None if root.is_dir() else f"{root} does not exist",
        "entries": entries,
        "files": sum(entry.files for entry in entries),
        "bytes": filesizeformat(sum(entry.size for entry in entries)),
        "orphans": [entry for entry in entries if entry.orphan],
        "orphan_bytes": filesizeformat(sum(entry.size for entry in entries if entry.orphan)),
        "plan": would,
        "summary": report.summary,
    }


def _staging_store_overview(store) -> dict[str, object]:
    """The same for a staging area in an object store: its staged objects, by image."""
    report = cleanup_staging(dry_run=True)
    would = [text for level, text in report.lines if level <= 1]
    where = ", ".join(f"{name}={value}" for name, value in store.properties().items())
    root = f"{store.type_name} store ({where})"
    try:
        listing, problem = store.listing(), None
    except GlanceError as error:
        listing, problem = [], error.message or error.extra_detail
    images = Image.objects.in_bulk([data.image_id for data in listing], field_name="pk")
    entries = [
        StagingEntry(
            data.image_id,
            False,
            1,
            data.size,
            any(text.startswith(f"Would remove staged {data.image_id} ") for text in would),
            data.modified,
            images.get(data.image_id),
        )
        for data in listing
    ]
    return {
        "root": root,
        "problem": problem,
        "entries": entries,
        "files": len(entries),
        "bytes": filesizeformat(sum(entry.size for entry in entries)),
        "orphans": [entry for entry in entries if entry.orphan],
        "orphan_bytes": filesizeformat(sum(entry.size for entry in entries if entry.orphan)),
        "plan": would,
        "summary": report.summary,
    }


def _id_in(name: str) -> str | None:
    found = UUID_IN_NAME.search(name)
    return found[0] if found else None


def _count(entry: Path) -> tuple[int, int]:
    if entry.is_symlink() or not entry.is_dir():
        return 1, entry.lstat().st_size
    files, size = 0, 0
    for folder, _, names in os.walk(entry):
        for name in names:
            files, size = files + 1, size + (Path(folder) / name).lstat().st_size
    return files, size


def staging_view(request: HttpRequest, site) -> HttpResponse:
    context = {**site.each_context(request), "title": "Staging area", **staging_overview()}
    return TemplateResponse(request, "admin/staging/staging.html", context)


def staging_cleanup_view(request: HttpRequest, site) -> HttpResponse:
    """GET: what the cleanup would remove, to confirm; the confirmation's POST runs it."""
    if not confirmed(request):
        overview = staging_overview()
        rows = [
            ConfirmRow(
                entry.name,
                (
                    entry.name,
                    entry.image.name if entry.image and entry.image.name else "—",
                    entry.image.status if entry.image else "gone",
                    entry.size_display,
                ),
            )
            for entry in overview["orphans"]
        ]
        back = reverse(f"{site.name}:staging")
        return confirm_action(
            request,
            site,
            title="Clean up the staging area",
            question=f"Remove these {len(rows)} staging entries ({overview['orphan_bytes']})? "
            "No upload or import will use them again."
            if rows
            else "Nothing in the staging area is to be removed; run the cleanup anyway?",
            columns=("Entry", "Image", "Image status", "Size"),
            rows=rows,
            button="Yes, clean up",
            action=None,
            post_to=reverse(f"{site.name}:staging_cleanup"),
            back_to=back,
        )
    report = cleanup_staging(dry_run=False)
    for level, text in report.lines:
        if level <= 1:
            messages.info(request, text)
    messages.success(request, report.summary)
    return HttpResponseRedirect(reverse(f"{site.name}:staging"))


def operator_urls(site) -> list:
    """URL patterns for the operator site's ``get_urls``; every view needs the operator."""

    def wrap(view, *decorators):
        def bound(request, *args, **kwargs):
            return view(request, site, *args, **kwargs)

        for decorator in decorators:
            bound = decorator(bound)
        return site.admin_view(bound)

    return [
        path("about/", wrap(about_view), name="about"),
        path("policy/", wrap(policy_view), name="policy"),
        path("staging/", wrap(staging_view), name="staging"),
        path("staging/cleanup/", wrap(staging_cleanup_view), name="staging_cleanup"),
    ]
