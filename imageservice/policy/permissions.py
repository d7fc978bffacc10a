"""The one DRF permission class: each view action maps to a Glance policy name.

Views declare ``policy_map = {"get": "get_image", ...}``. Views about one image set
``policy_object = True``: the check then runs against the image (after the caller was shown to
see it at all), so a refusal on an invisible image is a 404, as in Glance. Where the rule or the
moment of the check depends on the request (``copy_image`` for copy-image imports, after the
status check), the service calls :func:`require_image_policy` itself.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.core.exceptions import ImproperlyConfigured
from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import BasePermission

from imageservice.errors import GlanceError
from imageservice.identity.credentials import Credentials
from imageservice.policy.engine import get_policy


def policy_name_for(view, method: str) -> str:
    try:
        return view.policy_map[method.lower()]
    except (AttributeError, KeyError):
        raise ImproperlyConfigured(
            f"{type(view).__name__} has no policy name for {method.upper()}"
        ) from None


def authorize(name: str, credentials: Credentials, target: Mapping[str, object]) -> bool:
    return get_policy().authorize(name, credentials, target)


def caller_is_admin(request) -> bool:
    """Glance's ``context.is_admin``: the ``context_is_admin`` rule for the caller."""
    if not hasattr(request, "_caller_is_admin"):
        request._caller_is_admin = get_policy().is_admin(request.credentials)
    return request._caller_is_admin


def refuse(name: str) -> GlanceError:
    return GlanceError(403, f"You are not authorized to complete {name} action.")


def require_image_policy(
    name: str, credentials: Credentials, image, target: Mapping[str, object] | None = None
) -> None:
    """Raise Glance's refusal unless rule ``name`` allows ``credentials`` on ``image``.

    ``target`` defaults to the image's own policy target. A caller who may not even
    ``get_image`` gets 404, so a refusal never reveals that the image exists.
    """
    if target is None:
        target = image.policy_target(credentials)
    if authorize(name, credentials, target):
        return
    visible = authorize("get_image", credentials, image.policy_target(credentials))
    raise refuse(name) if name != "get_image" and visible else GlanceError(404)


class GlancePolicy(BasePermission):
    def has_permission(self, request, view) -> bool:
        if getattr(request, "credentials", None) is None:
            raise NotAuthenticated()
        method = request.method.lower()
        if method not in view.http_method_names or not hasattr(view, method):
            return True  # the view answers 405 itself
        name = policy_name_for(view, request.method)
        if getattr(view, "policy_object", False):
            return True
        if not authorize(name, request.credentials, view.policy_target(request)):
            raise view.policy_refusal(request, name)
        return True

    def has_object_permission(self, request, view, obj) -> bool:
        name = policy_name_for(view, request.method)
        require_image_policy(
            name, request.credentials, obj, view.object_policy_target(request, obj)
        )
        return True
