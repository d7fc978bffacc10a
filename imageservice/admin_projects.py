"""Projects by name in the operator console: the chooser behind owner and member fields, and
the names shown beside ids.

Local mode knows its projects (``identity.Project``); Keystone mode asks Keystone, cached
(``keystone_names``). A value that names no known project is refused with a message instead of
being saved: a typo'd owner would hide the image from its real owner.
"""

from __future__ import annotations

from collections.abc import Iterable

from django import forms
from django.utils.html import format_html, format_html_join

from imageservice.identity import keystone_names
from imageservice.identity.models import Project


def known_projects() -> list[tuple[str, str]]:
    """``(id, name)`` of every project the console can choose from, by name."""
    if keystone_names.keystone_mode():
        return keystone_names.project_choices()
    return list(Project.objects.order_by("name").values_list("id", "name"))


def project_names(ids: Iterable[str | None]) -> dict[str, str]:
    """The names of the given project ids that are known (one query, or Keystone's cache)."""
    wanted = {project_id for project_id in ids if project_id}
    if not wanted:
        return {}
    if keystone_names.keystone_mode():
        names = {project_id: keystone_names.project_name(project_id) for project_id in wanted}
        return {project_id: name for project_id, name in names.items() if name}
    return dict(Project.objects.filter(pk__in=wanted).values_list("id", "name"))


def resolve_project(value: str) -> str:
    """The id of the project ``value`` names (by id or by name); ``ValidationError`` if none."""
    projects = known_projects()
    if not projects and keystone_names.keystone_mode():
        raise forms.ValidationError(
            "Keystone did not answer, so the project cannot be checked; try again later."
        )
    if value in dict(projects):
        return value
    by_name = [project_id for project_id, name in projects if name == value]
    if len(by_name) == 1:
        return by_name[0]
    if by_name:
        raise forms.ValidationError(
            f"Several projects are named '{value}' (in different domains): give the project ID."
        )
    raise forms.ValidationError(
        f"No project has the ID or name '{value}'. Choose one of the listed projects; "
        "nothing was saved."
    )


class ProjectChooser(forms.TextInput):
    """A text box suggesting every known project (``<datalist>``: type a name or an id), with
    the current project's name beside it."""

    def __init__(self, attrs: dict | None = None) -> None:
        super().__init__({"size": 40, "autocomplete": "off", **(attrs or {})})

    def render(self, name, value, attrs=None, renderer=None) -> str:
        projects = known_projects()
        list_id = f"{(attrs or {}).get('id') or name}-projects"
        box = super().render(name, value, {**(attrs or {}), "list": list_id}, renderer)
        options = format_html_join("", '<option value="{}">{}</option>', projects)
        current = dict(projects).get(value) if value else None
        shown = format_html(' <span class="project-name">{}</span>', current) if current else ""
        return format_html('{}<datalist id="{}">{}</datalist>{}', box, list_id, options, shown)


class ProjectField(forms.CharField):
    """A project chosen by id or name, cleaned to its id; blank means none (when not required).

    The value already stored is accepted unchanged, so an image whose owner Keystone no longer
    lists can still be edited.
    """

    widget = ProjectChooser

    def __init__(self, *args, stored: str | None = None, **kwargs) -> None:
        kwargs.setdefault("max_length", 255)
        super().__init__(*args, **kwargs)
        self.stored = stored

    def clean(self, value) -> str | None:
        value = (super().clean(value) or "").strip()
        if not value:
            return None
        if self.stored and value == self.stored:
            return value
        return resolve_project(value)
