"""Small helpers the API tests share."""

from __future__ import annotations

from http import HTTPStatus

from images.models import Image

JSON = "application/json"


def glance_error(code: int, message: str) -> dict[str, str]:
    """Glance's JSON error body (WebOb's template) for ``code`` with ``message``."""
    phrase = HTTPStatus(code).phrase
    return {"message": f"{message}<br /><br />\n\n\n", "code": f"{code} {phrase}", "title": phrase}


def error_message(response) -> str:
    """The explanation inside a JSON error body."""
    return response.json()["message"].removesuffix("<br /><br />\n\n\n")


def reloaded(image: Image) -> Image:
    return Image.objects.get(pk=image.pk)
