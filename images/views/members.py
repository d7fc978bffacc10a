"""``/v2/images/{id}/members``: sharing an image with other projects (§10)."""

from __future__ import annotations

from rest_framework.response import Response

from images import services
from images.models import ImageMember, Visibility
from images.serializers import member_to_dict
from imageservice.api import GlanceAPIView, no_content
from imageservice.errors import GlanceError


def _only_shared(image, message: str) -> None:
    if image.visibility != Visibility.SHARED:
        raise GlanceError(403, message)


class MembersView(GlanceAPIView):
    policy_map = {"get": "get_members", "post": "add_member"}
    policy_object = True
    bodyless_methods = ("get",)

    def get(self, request, image_id: str):
        image = self.get_image(image_id)
        _only_shared(image, "Only shared images have members.")
        members = list(image.members.all())
        if not self.is_admin and image.owner != request.credentials.project_id:
            members = [m for m in members if m.member_id == request.credentials.project_id]
        return Response(
            {
                "members": [member_to_dict(m) for m in sorted(members, key=_created)],
                "schema": "/v2/schemas/members",
            }
        )

    def post(self, request, image_id: str):
        image = self.get_image(image_id)
        body = self.json_body()
        if not isinstance(body, dict):
            raise GlanceError(400, 'Expected a member in the form: {"member": "image_id"}')
        if "member" not in body:
            raise GlanceError(400, "Member to be added not specified")
        if not body["member"] or not isinstance(body["member"], str):
            raise GlanceError(400, "Member can't be empty")
        member = services.add_member(image, body["member"])
        return Response(member_to_dict(member))


def _created(member: ImageMember):
    return (member.created_at, member.member_id)


class MemberView(GlanceAPIView):
    policy_map = {"get": "get_member", "put": "modify_member", "delete": "delete_member"}
    policy_object = True
    bodyless_methods = ("get", "delete")

    def object_policy_target(self, request, obj) -> dict[str, object]:
        target = super().object_policy_target(request, obj)
        if request.method == "PUT":
            # The member being changed is the one in the URL: only that project may answer.
            target["member_id"] = self.kwargs["member_id"]
        return target

    def get(self, request, image_id: str, member_id: str):
        # Glance answers every refusal here with 404 so membership never leaks.
        try:
            image = self.get_image(image_id)
        except GlanceError as error:
            raise GlanceError(404) from error
        member = self._member(image, member_id)
        caller = request.credentials.project_id
        if not self.is_admin and caller not in (image.owner, member.member_id):
            raise GlanceError(404)
        return Response(member_to_dict(member))

    def put(self, request, image_id: str, member_id: str):
        image = self.get_image(image_id)
        body = self.json_body()
        if not isinstance(body, dict):
            raise GlanceError(400, 'Expected a status in the form: {"status": "status"}')
        if "status" not in body:
            raise GlanceError(400, "Status not specified")
        _only_shared(image, f"Not allowed to update members for image {image.id}.")
        member = self._member(image, member_id)
        return Response(member_to_dict(services.set_member_status(member, body["status"])))

    def delete(self, request, image_id: str, member_id: str):
        image = self.get_image(image_id)
        _only_shared(image, f"Not allowed to delete members for image {image.id}.")
        services.remove_member(self._member(image, member_id))
        return no_content()

    def _member(self, image, member_id: str) -> ImageMember:
        member = image.member_row(member_id)
        if member is None:
            raise GlanceError(404, f"{member_id} is not a member of image {image.id}")
        return member
