"""``/v2/images`` and ``/v2/images/{id}``: create, list, show, update, delete, (de|re)activate."""

from __future__ import annotations

from django.conf import settings
from rest_framework.response import Response

from images import filters, patch, services
from images.models import Image
from images.protections import access_for
from images.serializers import image_to_dict
from images.storage import stores
from images.views.lookup import ImageLookupMixin
from imageservice.api import GlanceAPIView, no_content
from imageservice.openapi import operations as doc

BOOLEAN = ["true", "false"]
TIME_FILTER = (
    rf"^(({'|'.join([*filters.TIME_LOOKUPS, 'neq'])}):)?"
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)?$"
)
LIST_PARAMETERS = [
    doc.query("limit", "Page size (capped at API_LIMIT_MAX)", int),
    doc.query("marker", "The id of the last image of the previous page"),
    doc.query("sort", "`key[:asc|desc],…` (the new syntax)"),
    doc.query("sort_key", "A sort key (the old syntax)", enum=list(filters.SORT_KEYS)),
    doc.query("sort_dir", "The direction (the old syntax)", enum=list(filters.SORT_DIRS)),
    doc.query("name", "Exact name, or `in:a,b`"),
    doc.query("id", "Exact id, or `in:…`"),
    doc.query("status", "Exact status, or `in:…`"),
    doc.query("visibility", "Which images", enum=list(filters.VISIBILITY_VALUES)),
    doc.query("member_status", "Default accepted", enum=list(filters.MEMBER_STATUS_VALUES)),
    doc.query("owner", "The owning project"),
    doc.query("tag", "An image tag (repeatable: all must match)"),
    doc.query("os_hidden", "true: only hidden images; default false", enum=BOOLEAN),
    doc.query("protected", "true or false", enum=BOOLEAN),
    doc.query("container_format", "Exact value, or `in:…`"),
    doc.query("disk_format", "Exact value, or `in:…`"),
    doc.query("size_min", "Smallest size in bytes", int),
    doc.query("size_max", "Largest size in bytes", int),
    doc.query("created_at", "`<operator>:<ISO 8601 time>`", pattern=TIME_FILTER),
    doc.query("updated_at", "`<operator>:<ISO 8601 time>`", pattern=TIME_FILTER),
    doc.query("checksum", "The MD5 of the data"),
    doc.query("os_hash_value", "The digest of the data"),
]


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

    @doc.glance_operation(
        "list_images",
        "List images",
        tag="images",
        ok={200: "images"},
        parameters=LIST_PARAMETERS,
        description="Any other query parameter filters on the custom property of that name.",
    )
    def get(self, request):
        page = filters.list_images(request, self.is_admin)
        readable = access_for(request).can_read  # property protections: hide unreadable ones
        rows = [
            image_to_dict(image, viewer_is_admin=self.is_admin, readable=readable)
            for image in page.items
        ]
        return Response(page.body("images", rows))

    @doc.glance_operation(
        "create_image",
        "Create an image record",
        tag="images",
        body="ImageCreate",
        ok={201: "image"},
        errors=(409, 413),
    )
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

    @doc.glance_operation(
        "show_image", "Show an image", tag="images", ok={200: "image"}, errors=(404,)
    )
    def get(self, request, image_id: str):
        image = self.get_image(image_id)
        readable = access_for(request).can_read
        return Response(image_to_dict(image, viewer_is_admin=self.is_admin, readable=readable))

    @doc.glance_operation(
        "update_image",
        "Update an image (JSON patch)",
        tag="images",
        body={
            patch.MEDIA_TYPE_V21: doc.ref("ImagePatchV21"),
            patch.MEDIA_TYPE_V20: doc.ref("ImagePatchV20"),
        },
        ok={200: "image"},
        errors=(404, 409, 413, 415),
    )
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

    @doc.glance_operation(
        "delete_image", "Delete an image", tag="images", ok={204: None}, errors=(404, 409)
    )
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

    @doc.glance_operation(
        "deactivate_image", "Deactivate an image", tag="images", ok={204: None}, errors=(404, 409)
    )
    def post(self, request, image_id: str):
        services.deactivate_image(self.get_image(image_id))
        return no_content()


class ReactivateView(ImageLookupMixin, GlanceAPIView):
    policy_map = {"post": "reactivate"}
    policy_object = True
    bodyless_methods = ("post",)

    @doc.glance_operation(
        "reactivate_image", "Reactivate an image", tag="images", ok={204: None}, errors=(404, 409)
    )
    def post(self, request, image_id: str):
        services.reactivate_image(self.get_image(image_id))
        return no_content()


class ImageTagView(ImageLookupMixin, GlanceAPIView):
    policy_map = {"put": "modify_image", "delete": "modify_image"}
    policy_object = True
    bodyless_methods = ("put", "delete")

    def not_found_message(self, image_id: str) -> str:
        return f"Image {image_id} not found."

    @doc.glance_operation("add_tag", "Add a tag", tag="tags", ok={204: None}, errors=(404, 413))
    def put(self, request, image_id: str, tag: str):
        services.add_tag(self.get_image(image_id), tag)
        return no_content()

    @doc.glance_operation("remove_tag", "Remove a tag", tag="tags", ok={204: None}, errors=(404,))
    def delete(self, request, image_id: str, tag: str):
        services.remove_tag(self.get_image(image_id), tag)
        return no_content()
