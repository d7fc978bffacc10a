"""``/v2/images`` and ``/v2/images/{id}``: create, list, show, update, delete, (de|re)activate."""

from __future__ import annotations

from django.conf import settings
from rest_framework.response import Response

from images import patch, services
from images.filters import list_images
from images.models import Image
from images.protections import access_for
from images.serializers import image_to_dict
from images.storage import stores
from images.views.lookup import ImageLookupMixin
from imageservice.api import GlanceAPIView, no_content


class ImagesView(GlanceAPIView):
    policy_map = {"get": "get_images", "post": "add_image"}

    def policy_target(self, request) -> dict[str, object]:
        if request.method == "POST":
            body = services.validate_create_body(self.json_body())
            return services.create_target(body, request.credentials)
        return super().policy_target(request)

    def policy_refusal(self, request, name: str):
        if request.method == "POST":
            return services.create_refusal(self.json_body(), request.credentials)
        return super().policy_refusal(request, name)

    def get(self, request):
        page = list_images(request, self.is_admin)
        readable = access_for(request).can_read  # property protections: hide unreadable ones
        rows = [
            image_to_dict(image, viewer_is_admin=self.is_admin, readable=readable)
            for image in page.items
        ]
        return Response(page.body("images", rows))

    def post(self, request):
        access = access_for(request)
        image = services.create_image(self.json_body(), request.credentials, access)
        image = Image.objects.for_display().get(pk=image.pk)
        body = image_to_dict(image, viewer_is_admin=self.is_admin, readable=access.can_read)
        response = Response(body, status=201)
        response["Location"] = request.build_absolute_uri(f"/v2/images/{image.id}")
        if settings.ENABLE_IMAGE_IMPORT and settings.ENABLED_IMPORT_METHODS:
            # openstacksdk imports only with a method this header names.
            response["OpenStack-image-import-methods"] = ",".join(settings.ENABLED_IMPORT_METHODS)
        if stores.multiple_stores():
            response["OpenStack-image-store-ids"] = ",".join(stores.all_stores())
        return response


class ImageView(ImageLookupMixin, GlanceAPIView):
    policy_map = {"get": "get_image", "patch": "modify_image", "delete": "delete_image"}
    policy_object = True
    bodyless_methods = ("get", "delete")

    def get(self, request, image_id: str):
        image = self.get_image(image_id)
        readable = access_for(request).can_read
        return Response(image_to_dict(image, viewer_is_admin=self.is_admin, readable=readable))

    def patch(self, request, image_id: str):
        media_type = patch.check_media_type(request.headers.get("Content-Type", ""))
        image = self.get_image(image_id)
        operations = patch.parse_operations(self.json_body(), media_type)
        access = access_for(request)
        image = services.patch_image(
            image,
            operations,
            media_type,
            credentials=request.credentials,
            access=access,
            is_admin=self.is_admin,
        )
        body = image_to_dict(image, viewer_is_admin=self.is_admin, readable=access.can_read)
        return Response(body)

    def delete(self, request, image_id: str):
        services.delete_image(self.get_image(image_id))
        return no_content()

    def not_found_message(self, image_id: str) -> str | None:
        if self.request.method == "DELETE":
            return f"Failed to find image {image_id} to delete"
        return super().not_found_message(image_id)


class DeactivateView(ImageLookupMixin, GlanceAPIView):
    policy_map = {"post": "deactivate"}
    policy_object = True
    bodyless_methods = ("post",)

    def post(self, request, image_id: str):
        services.deactivate_image(self.get_image(image_id))
        return no_content()


class ReactivateView(ImageLookupMixin, GlanceAPIView):
    policy_map = {"post": "reactivate"}
    policy_object = True
    bodyless_methods = ("post",)

    def post(self, request, image_id: str):
        services.reactivate_image(self.get_image(image_id))
        return no_content()


class ImageTagView(ImageLookupMixin, GlanceAPIView):
    policy_map = {"put": "modify_image", "delete": "modify_image"}
    policy_object = True
    bodyless_methods = ("put", "delete")

    def not_found_message(self, image_id: str) -> str:
        return f"Image {image_id} not found."

    def put(self, request, image_id: str, tag: str):
        services.add_tag(self.get_image(image_id), tag)
        return no_content()

    def delete(self, request, image_id: str, tag: str):
        services.remove_tag(self.get_image(image_id), tag)
        return no_content()
