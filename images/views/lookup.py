"""Looking up the one image a view is about, as Glance does."""

from __future__ import annotations

from images.models import Image
from imageservice.errors import GlanceError


class ImageLookupMixin:
    """For API views about one image: the image by id, visible to the caller, else 404."""

    def get_image(self, image_id: str, queryset=None, *, authorize: bool = True) -> Image:
        """The visible, non-deleted image, checked against this action's policy, else 404.

        ``authorize=False`` leaves the policy check to the caller, for calls where Glance
        validates something else first."""
        queryset = queryset if queryset is not None else Image.objects.with_relations()
        image = None
        if len(image_id) <= 36:
            image = queryset.alive().filter(pk=image_id).first()
        credentials = self.request.credentials
        if image is None or not image.is_visible_to(credentials.project_id, self.is_admin):
            raise GlanceError(404, self.not_found_message(image_id))
        if authorize:
            self.check_object_permissions(self.request, image)
        return image

    def not_found_message(self, image_id: str) -> str | None:
        return f"No image found with ID {image_id}"
