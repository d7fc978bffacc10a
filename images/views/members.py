"""``/v2/images/{id}/members``: sharing an image with other projects (§10).

Glance checks in a fixed order here (visibility, body, shared-only, member lookup, then policy),
and hides other projects' membership rows from members; the views follow that order.
"""

from __future__ import annotations

from rest_framework.response import Response

from images import services
from images.models import Image, ImageMember, Visibility
from images.serializers import member_to_dict
from images.views.lookup import ImageLookupMixin
from imageservice.api import GlanceAPIView, no_content
from imageservice.errors import GlanceError
from imageservice.openapi import operations as doc


def _only_shared(image: Image, error: GlanceError) -> None:
    if image.visibility != Visibility.SHARED:
        raise error


class MemberAPIView(ImageLookupMixin, GlanceAPIView):
    policy_object = True

    def not_found_message(self, image_id: str) -> str:
        return f"Image {image_id} not found."

    def visible_members(self, image: Image) -> list[ImageMember]:
        """The rows the caller may know about: all for the owner and admins, else its own."""
        members = list(image.members.all())
        caller = self.request.credentials.project_id
        if self.is_admin or image.owner == caller:
            return members
        return [member for member in members if member.member_id == caller]

    def member_or_404(self, image: Image, member_id: str) -> ImageMember:
        for member in self.visible_members(image):
            if member.member_id == member_id:
                return member
        raise GlanceError(404, f"{member_id} not found in the member list of the image {image.id}.")


class MembersView(MemberAPIView):
    policy_map = {"get": "get_members", "post": "add_member"}
    bodyless_methods = ("get",)

    @doc.glance_operation(
        "list_members", "List an image's members", tag="members", ok={200: "members"}, errors=(404,)
    )
    def get(self, request, image_id: str):
        image = self.get_image(image_id, authorize=False)
        _only_shared(
            image,
            GlanceError(
                403,
                f"Not allowed to list members for image {image.id}: "
                "Only shared images have members.",
            ),
        )
        self.check_object_permissions(request, image)
        members = sorted(self.visible_members(image), key=lambda m: (m.created_at, m.member_id))
        return Response(
            {"members": [member_to_dict(m) for m in members], "schema": "/v2/schemas/members"}
        )

    @doc.glance_operation(
        "create_member",
        "Share an image with a project",
        tag="members",
        body="MemberCreate",
        ok={200: "member"},
        errors=(404, 409, 413),
    )
    def post(self, request, image_id: str):
        image = self.get_image(image_id, authorize=False)
        member_id = self._member_from_body()
        self.check_object_permissions(request, image)
        member = services.add_member(image, member_id)
        return Response(member_to_dict(member))

    def _member_from_body(self) -> str:
        body = self.json_body()
        if not isinstance(body, dict):
            raise GlanceError(400, 'Expected a member in the form: {"member": "image_id"}')
        if "member" not in body:
            raise GlanceError(400, "Member to be added not specified")
        if not body["member"] or not isinstance(body["member"], str):
            raise GlanceError(400, "Member can't be empty")
        # Glance leaves the length to its String(255) column (a database error); SQLite would
        # not even enforce it.
        longest = ImageMember._meta.get_field("member_id").max_length
        if len(body["member"]) > longest:
            raise GlanceError(400, f"Member ID is longer than {longest} characters.")
        return body["member"]


class MemberView(MemberAPIView):
    policy_map = {"get": "get_member", "put": "modify_member", "delete": "delete_member"}
    bodyless_methods = ("get", "delete")

    def object_policy_target(self, request, obj) -> dict[str, object]:
        target = super().object_policy_target(request, obj)
        if request.method == "PUT":
            # The member being changed is the one in the URL: only that project may answer.
            target["member_id"] = self.kwargs["member_id"]
        return target

    @doc.glance_operation(
        "show_member", "Show a member", tag="members", ok={200: "member"}, errors=(404,)
    )
    def get(self, request, image_id: str, member_id: str):
        image = self.get_image(image_id, authorize=False)
        _only_shared(image, GlanceError(404, "Only shared images have members."))
        member = self.member_or_404(image, member_id)
        # Glance answers a refusal here with 404 so membership never leaks.
        try:
            self.check_object_permissions(request, image)
        except GlanceError as error:
            raise GlanceError(404) from error
        return Response(member_to_dict(member))

    @doc.glance_operation(
        "update_member",
        "Accept, reject or reset a membership",
        tag="members",
        body="MemberStatusUpdate",
        ok={200: "member"},
        errors=(404,),
    )
    def put(self, request, image_id: str, member_id: str):
        image = self.get_image(image_id, authorize=False)
        status = self._status_from_body()
        _only_shared(
            image, GlanceError(403, f"Not allowed to update members for image {image.id}.")
        )
        member = self.member_or_404(image, member_id)
        self.check_object_permissions(request, image)
        return Response(member_to_dict(services.set_member_status(member, status)))

    @doc.glance_operation(
        "delete_member", "Remove a member", tag="members", ok={204: None}, errors=(404,)
    )
    def delete(self, request, image_id: str, member_id: str):
        image = self.get_image(image_id, authorize=False)
        _only_shared(
            image, GlanceError(403, f"Not allowed to delete members for image {image.id}.")
        )
        member = self.member_or_404(image, member_id)
        self.check_object_permissions(request, image)
        services.remove_member(member)
        return no_content()

    def _status_from_body(self) -> str:
        body = self.json_body()
        if not isinstance(body, dict):
            raise GlanceError(400, 'Expected a status in the form: {"status": "status"}')
        if "status" not in body:
            raise GlanceError(400, "Status not specified")
        return body["status"]
