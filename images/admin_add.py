"""The console's "Add image" page: metadata, then a file or a web-download URL, from the browser.

The page's script calls the Image API itself, as any client does: ``POST /v2/images``, then
``PUT /v2/images/{id}/stage`` with a progress bar and ``POST /v2/images/{id}/import``
(glance-direct), or the import alone (web-download), then follows the image and its task. So
the image is created, staged and imported by the API's own views, services and policy, with
the operator's credentials, and nothing here writes an image. The API takes tokens, not console
sessions: the page asks ``token_view`` (a CSRF-protected POST, operators only) for a short-lived
token of the signed-in operator (``identity.services.issue_console_token``).

In Keystone mode the API trusts only tokens keystonemiddleware confirmed with Keystone, which
the console cannot issue, so the page is not offered there.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.template.response import TemplateResponse
from django.urls import get_script_prefix, reverse
from django.views.decorators.http import require_POST

from images import validation
from images.models import Image, Visibility
from imageservice.admin_projects import known_projects
from imageservice.identity import keystone_names
from imageservice.identity.services import issue_console_token

SOURCES = (
    ("glance-direct", "Upload a file (glance-direct)"),
    ("web-download", "Web download from a URL"),
)


def console_can_add_images() -> bool:
    """The page needs a token the API accepts: a local one, so not in Keystone mode."""
    return not keystone_names.keystone_mode()


def available_sources() -> list[tuple[str, str]]:
    """The import methods the page can use, as the API's ``/v2/info/import`` offers them."""
    if not settings.ENABLE_IMAGE_IMPORT:
        return []
    return [(name, label) for name, label in SOURCES if name in settings.ENABLED_IMPORT_METHODS]


class AddImageForm(forms.Form):
    """The fields of the page. Rendered here, never posted here: the script sends the values
    to ``POST /v2/images``, whose validation and messages are the API's."""

    name = forms.CharField(max_length=255, required=False)
    disk_format = forms.ChoiceField()
    container_format = forms.ChoiceField()
    visibility = forms.ChoiceField(choices=[(value, value) for value in Visibility.values])
    owner = forms.ChoiceField(required=False, help_text="Empty: your own project.")
    min_disk = forms.IntegerField(
        min_value=0, max_value=validation.MAX_INT, initial=0, help_text="GiB"
    )
    min_ram = forms.IntegerField(
        min_value=0, max_value=validation.MAX_INT, initial=0, help_text="MiB"
    )
    protected = forms.BooleanField(required=False)
    tags = forms.CharField(required=False, help_text="Comma-separated.")
    properties = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        help_text="One key=value a line (os_distro=ubuntu).",
    )
    source = forms.ChoiceField(widget=forms.RadioSelect)
    file = forms.FileField(required=False)
    uri = forms.URLField(required=False, label="URL", assume_scheme="https")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Read at form time: the formats and methods are operator settings.
        self.fields["disk_format"].choices = [(value, value) for value in settings.DISK_FORMATS]
        self.fields["container_format"].choices = [
            (value, value) for value in settings.CONTAINER_FORMATS
        ]
        self.fields["visibility"].initial = Visibility.SHARED
        self.fields["owner"].choices = [("", "—"), *known_projects()]
        sources = available_sources()
        self.fields["source"].choices = sources
        self.fields["source"].initial = sources[0][0] if sources else None


def add_view(request: HttpRequest, site) -> TemplateResponse:
    context = {
        **site.each_context(request),
        "title": "Add image",
        "opts": Image._meta,
        "form": AddImageForm(),
        "sources": available_sources(),
        "page_config": {
            "api": f"{get_script_prefix()}v2",
            "token_url": reverse(f"{site.name}:images_image_add_token"),
            "image_url": reverse(f"{site.name}:images_image_change", args=["IMAGE_ID"]),
            "task_url": reverse(f"{site.name}:tasks_task_change", args=["TASK_ID"]),
        },
    }
    return TemplateResponse(request, "admin/images/image/add_image.html", context)


@require_POST
def token_view(request: HttpRequest) -> JsonResponse:
    """``{"token", "expires_at"}``: the signed-in operator's token for the page's API calls."""
    token, raw_token = issue_console_token(request.user)
    return JsonResponse({"token": raw_token, "expires_at": token.expires_at.isoformat()})
