"""The operator console (/admin/): who gets in, the image, task and identity pages, their actions
and the live progress endpoint."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from html import escape

import pytest
from django.test import Client
from django.utils import timezone

from images.models import (
    Image,
    ImageLocation,
    ImageMember,
    ImageProperty,
    ImageTag,
    PropertyProtection,
)
from imageservice.identity.models import ApiToken
from imageservice.identity.services import ensure_project, ensure_user
from imageservice.identity.tokens import hash_token
from tasks.models import Task
from tests.support import JSON, error_message, reloaded

OCTET = "application/octet-stream"
DATA = b"staged image bytes " * 4096


@pytest.fixture
def operator(admin) -> Client:
    client = Client()
    client.force_login(admin.user)
    return client


def run_action(client: Client, changelist: str, action: str, *pks) -> str:
    response = client.post(
        changelist, {"action": action, "_selected_action": [str(pk) for pk in pks]}, follow=True
    )
    assert response.status_code == 200
    return response.content.decode()


# --- who gets in ---------------------------------------------------------------------------


def test_console_redirects_user_without_admin_role_to_login(owner):
    client = Client()
    client.force_login(owner.user)

    for url in ("/admin/", "/admin/images/image/", "/admin/tasks/task/progress/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/?next=")


def test_login_refuses_staff_user_without_admin_role(db, client):
    project, _ = ensure_project("project-x")
    user, _ = ensure_user("staffer", project, ["member"], password="secret-pw")
    user.is_staff = True
    user.save()

    response = client.post("/admin/login/", {"username": "staffer", "password": "secret-pw"})

    assert response.status_code == 200
    assert "Please enter the correct username and password" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_login_lets_admin_role_in(db, client):
    project, _ = ensure_project("admin")
    ensure_user("operator", project, ["admin"], password="secret-pw")

    response = client.post(
        "/admin/login/", {"username": "operator", "password": "secret-pw", "next": "/admin/"}
    )

    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_removing_admin_role_shuts_the_console(admin, operator):
    admin.user.roles.remove(*admin.user.roles.filter(name="admin"))

    assert operator.get("/admin/").status_code == 302


def test_static_files_are_served(db, client):
    response = client.get("/static/admin/css/base.css")

    assert response.status_code == 200
    assert b"".join(response.streaming_content).startswith(b"/*")


# --- images: list, filters, search -------------------------------------------------------------


def listed_ids(response) -> set[str]:
    return set(re.findall(r'name="_selected_action" value="([^"]+)"', response.content.decode()))


def test_image_list_shows_status_owner_project_size_and_visibility(operator, make_image):
    image = make_image(name="cirros", status="active", size=3 * 1024**2, visibility="public")

    response = operator.get("/admin/images/image/")

    assert response.status_code == 200
    rows = re.findall(r"<tr>(?:(?!</tr>).)*</tr>", response.content.decode(), re.S)
    [row] = [row for row in rows if image.id in row]
    cells = re.findall(r'<t[dh] class="field-(\w+)[^"]*">(?:<a [^>]*>)?([^<]*)', row)
    assert dict(cells) == {
        "id": image.id,
        "name": "cirros",
        "status": "Active",
        "owner_display": "project-a",
        "size_display": "3.0\xa0MB",
        "visibility": "Public",
        "protected": "",
        "created_at": dict(cells)["created_at"],
    }


def test_image_list_filters_by_status_owner_size_and_store(operator, make_image, outsider):
    active = make_image(status="active", size=10)
    queued = make_image()
    big = make_image(status="active", size=20 * 1024**3, owner=outsider.project_id)
    ImageLocation.objects.create(image=active, store="file", url="file:///x")

    assert listed_ids(operator.get("/admin/images/image/?status__exact=queued")) == {queued.id}
    assert listed_ids(operator.get(f"/admin/images/image/?owner={outsider.project_id}")) == {big.id}
    assert listed_ids(operator.get("/admin/images/image/?size=large")) == {big.id}
    assert listed_ids(operator.get("/admin/images/image/?size=none")) == {queued.id}
    assert listed_ids(operator.get("/admin/images/image/?store=file")) == {active.id}
    assert listed_ids(operator.get("/admin/images/image/?store=-")) == {queued.id, big.id}


def test_image_search_matches_name_or_exact_id_or_hash(operator, make_image):
    ubuntu = make_image(name="Ubuntu 24.04")
    hashed = make_image(name="other", os_hash_value="ab" * 64)
    make_image(name="fedora")

    assert listed_ids(operator.get("/admin/images/image/?q=ubuntu")) == {ubuntu.id}
    assert listed_ids(operator.get(f"/admin/images/image/?q={hashed.id}")) == {hashed.id}
    assert listed_ids(operator.get(f"/admin/images/image/?q={'ab' * 64}")) == {hashed.id}


def test_image_list_hides_deleted_images_unless_asked(operator, make_image):
    alive = make_image()
    gone = make_image(status="deleted", deleted=True)

    assert listed_ids(operator.get("/admin/images/image/")) == {alive.id}
    assert listed_ids(operator.get("/admin/images/image/?deleted=yes")) == {gone.id}


def test_image_list_query_count_does_not_grow_with_images(
    operator, make_image, django_assert_max_num_queries
):
    for number in range(50):
        image = make_image(name=f"image-{number}", status="active", size=number)
        ImageLocation.objects.create(image=image, store="file", url=f"file:///{number}")
        ImageProperty.objects.create(image=image, name="os_distro", value="cirros")
        ImageTag.objects.create(image=image, value="demo")

    # session, user, roles, projects (owner filter), count, page
    with django_assert_max_num_queries(6):
        response = operator.get("/admin/images/image/?store=file&size=small&q=image")

    assert len(listed_ids(response)) == 50


# --- images: inline rows -----------------------------------------------------------------------


def inline(prefix: str, rows: list[dict], initial: int) -> dict[str, object]:
    data = {
        f"{prefix}-TOTAL_FORMS": len(rows),
        f"{prefix}-INITIAL_FORMS": initial,
        f"{prefix}-MIN_NUM_FORMS": 0,
        f"{prefix}-MAX_NUM_FORMS": 1000,
    }
    for number, row in enumerate(rows):
        data.update({f"{prefix}-{number}-{name}": value for name, value in row.items()})
    return data


def image_form(image: Image, properties=(), tags=(), members=(), **fields) -> dict[str, object]:
    """The change form as the browser posts it: existing rows first, with their ids."""
    existing = {
        "properties": list(image.properties.exclude(name__startswith="os_glance")),
        "tags": list(image.tags.all()),
        "members": list(image.members.all()),
    }
    data = {
        "name": image.name or "",
        "visibility": image.visibility,
        "owner": image.owner or "",
        "disk_format": image.disk_format or "",
        "container_format": image.container_format or "",
        "min_disk": image.min_disk,
        "min_ram": image.min_ram,
        **fields,
    }
    for prefix, rows in (("properties", properties), ("tags", tags), ("members", members)):
        data.update(inline(prefix, list(rows), len(existing[prefix])))
    return data


def test_inline_property_rows_edit_add_and_keep_system_properties(operator, make_image):
    image = make_image(
        name="cirros",
        properties={"os_distro": "ubuntu", "os_glance_import_task": "t-1"},
        tags=["old"],
    )
    before = reloaded(image).updated_at
    distro = image.properties.get(name="os_distro")
    old_tag = image.tags.get()

    response = operator.post(
        f"/admin/images/image/{image.id}/change/",
        image_form(
            image,
            properties=[
                {"id": distro.pk, "image": image.id, "name": "os_distro", "value": "debian"},
                {"image": image.id, "name": "hw_disk_bus", "value": "scsi"},
            ],
            tags=[{"id": old_tag.pk, "image": image.id, "value": "old", "DELETE": "on"}],
        ),
    )

    assert response.status_code == 302
    image = reloaded(image)
    assert image.property_dict() == {
        "os_distro": "debian",
        "hw_disk_bus": "scsi",
        "os_glance_import_task": "t-1",
    }
    assert image.tag_list() == []
    assert image.updated_at > before


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("os_glance_import_task", "Attribute &#x27;os_glance_import_task&#x27; is reserved."),
        ("min_ram", "&#x27;min_ram&#x27; is an image attribute, not a custom property."),
    ],
)
def test_inline_property_with_reserved_name_is_refused(operator, make_image, name, error):
    image = make_image()

    response = operator.post(
        f"/admin/images/image/{image.id}/change/",
        image_form(image, properties=[{"image": image.id, "name": name, "value": "x"}]),
    )

    assert response.status_code == 200
    assert error in response.content.decode()
    assert reloaded(image).property_dict() == {}


def test_inline_member_is_added_to_shared_image_only(operator, make_image, member):
    shared = make_image(visibility="shared")
    private = make_image(visibility="private")
    row = {"member_id": member.project_id, "status": "accepted"}

    added = operator.post(
        f"/admin/images/image/{shared.id}/change/",
        image_form(shared, members=[{"image": shared.id, **row}]),
    )
    refused = operator.post(
        f"/admin/images/image/{private.id}/change/",
        image_form(private, members=[{"image": private.id, **row}]),
    )

    assert added.status_code == 302
    assert list(ImageMember.objects.filter(image=shared).values_list("member_id", "status")) == [
        (member.project_id, "accepted")
    ]
    assert refused.status_code == 200
    assert f"Not allowed to create members for image {private.id}." in refused.content.decode()
    assert not ImageMember.objects.filter(image=private).exists()


# --- images: inline edits through the API's services --------------------------------------------


def change(client: Client, image: Image, data: dict[str, object]):
    return client.post(f"/admin/images/image/{image.id}/change/", data)


def row(model_row, **fields) -> dict[str, object]:
    """An existing inline row as posted back, with ``fields`` changed."""
    posted = {"id": model_row.pk, "image": model_row.image_id}
    for name in ("name", "value", "member_id", "status"):
        if hasattr(model_row, name):
            posted[name] = getattr(model_row, name)
    return {**posted, **fields}


def api_patch(persona, image: Image, operations: list[dict]):
    return persona.client().patch(
        f"/v2/images/{image.id}",
        data=json.dumps(operations),
        content_type="application/openstack-images-v2.1-json-patch",
        HTTP_ACCEPT=JSON,
    )


def assert_refused_in_api_words(console, api, code: int, message: str) -> None:
    """The API refused with ``code`` and ``message``; the console showed the form again with it."""
    assert (api.status_code, error_message(api)) == (code, message)
    assert console.status_code == 200
    assert escape(message) in console.content.decode()


def test_inline_tag_over_quota_shows_the_api_message_and_writes_nothing(
    operator, owner, make_image, settings
):
    settings.IMAGE_TAG_QUOTA = 1
    image = make_image(name="cirros", tags=["old"])
    before = reloaded(image).updated_at

    response = change(
        operator,
        image,
        image_form(
            image, name="renamed", tags=[row(image.tags.get()), {"image": image.id, "value": "new"}]
        ),
    )
    # The console's form sets the whole tag list, as a PATCH of /tags does.
    api = owner.client().patch(
        f"/v2/images/{image.id}",
        data=json.dumps([{"op": "replace", "path": "/tags", "value": ["old", "new"]}]),
        content_type="application/openstack-images-v2.1-json-patch",
        HTTP_ACCEPT=JSON,
    )

    message = (
        "The limit has been exceeded on the number of allowed image tags. Attempted: 2, Maximum: 1"
    )
    assert_refused_in_api_words(response, api, 413, message)
    image = reloaded(image)
    assert (image.name, image.tag_list(), image.updated_at) == ("cirros", ["old"], before)


def test_inline_member_over_quota_shows_the_api_message_and_writes_nothing(
    operator, owner, member, outsider, make_image, settings
):
    settings.IMAGE_MEMBER_QUOTA = 1
    image = make_image(visibility="shared", members={member.project_id: "accepted"})
    added = {"image": image.id, "member_id": outsider.project_id, "status": "pending"}

    response = change(operator, image, image_form(image, members=[row(image.members.get()), added]))
    api = owner.client().post(
        f"/v2/images/{image.id}/members",
        data=json.dumps({"member": outsider.project_id}),
        content_type="application/json",
        HTTP_ACCEPT=JSON,
    )

    message = (
        f"Image member limit exceeded for image {image.id}: The limit has been exceeded on the "
        "number of allowed image members for this image. Attempted: 2, Maximum: 1:"
    )
    assert_refused_in_api_words(response, api, 413, message)
    assert list(image.members.values_list("member_id", flat=True)) == [member.project_id]


def test_inline_property_over_quota_counts_system_properties_as_the_api(
    operator, owner, make_image, settings
):
    settings.IMAGE_PROPERTY_QUOTA = 1
    image = make_image(properties={"os_glance_import_task": "t-1"})
    added = {"image": image.id, "name": "hw_disk_bus", "value": "scsi"}

    response = change(operator, image, image_form(image, properties=[added]))
    api = api_patch(owner, image, [{"op": "add", "path": "/hw_disk_bus", "value": "scsi"}])

    message = (
        "The limit has been exceeded on the number of allowed image properties. "
        "Attempted: 2, Maximum: 1"
    )
    assert_refused_in_api_words(response, api, 413, message)
    assert reloaded(image).property_dict() == {"os_glance_import_task": "t-1"}


def test_inline_property_change_obeys_protections_without_admin_bypass(operator, admin, make_image):
    PropertyProtection.objects.create(
        position=1, pattern="^secret$", create_rule="@", read_rule="@", update_rule="!"
    )
    PropertyProtection.objects.create(
        position=2, pattern=".*", create_rule="@", read_rule="@", update_rule="@", delete_rule="@"
    )
    image = make_image(properties={"secret": "s1"})

    response = change(
        operator, image, image_form(image, properties=[row(image.properties.get(), value="s2")])
    )
    api = api_patch(admin, image, [{"op": "replace", "path": "/secret", "value": "s2"}])

    message = "Property 'secret' is protected: you are not permitted to update it."
    assert_refused_in_api_words(response, api, 403, message)
    assert reloaded(image).property_dict() == {"secret": "s1"}


def test_inline_member_status_change_updates_the_member_as_the_api_does(
    operator, member, make_image
):
    image = make_image(visibility="shared", members={member.project_id: "pending"})
    pending = image.members.get()

    response = change(operator, image, image_form(image, members=[row(pending, status="accepted")]))

    assert response.status_code == 302
    accepted = ImageMember.objects.get(pk=pending.pk)
    assert accepted.status == "accepted"
    assert accepted.updated_at > pending.updated_at


def test_inline_member_is_added_while_the_image_is_made_shared(operator, member, make_image):
    image = make_image(visibility="private")
    added = {"image": image.id, "member_id": member.project_id, "status": "pending"}

    response = change(operator, image, image_form(image, visibility="shared", members=[added]))

    assert response.status_code == 302
    assert reloaded(image).visibility == "shared"
    assert list(image.members.values_list("member_id", "status")) == [
        (member.project_id, "pending")
    ]
    assert member.client().get(f"/v2/images/{image.id}", HTTP_ACCEPT=JSON).status_code == 200


def test_unchanged_change_form_leaves_updated_at_alone(operator, make_image):
    image = make_image(name="cirros", properties={"os_distro": "ubuntu"}, tags=["t"])
    before = reloaded(image).updated_at

    response = change(
        operator,
        image,
        image_form(image, properties=[row(image.properties.get())], tags=[row(image.tags.get())]),
    )

    assert response.status_code == 302
    assert reloaded(image).updated_at == before


# --- images: actions through the services ------------------------------------------------------


def test_deactivate_and_reactivate_actions_change_status(operator, make_image):
    image = make_image(status="active")

    deactivated = run_action(operator, "/admin/images/image/", "deactivate", image.id)
    assert "1 image deactivated." in deactivated
    assert reloaded(image).status == "deactivated"

    reactivated = run_action(operator, "/admin/images/image/", "reactivate", image.id)
    assert "1 image reactivated." in reactivated
    assert reloaded(image).status == "active"


def test_deactivate_action_reports_refusal_per_image(operator, make_image):
    queued = make_image(name="q")

    page = run_action(operator, "/admin/images/image/", "deactivate", queued.id)

    assert (
        f"Image {queued.id}: Not allowed to deactivate image in status &#x27;queued&#x27;" in page
    )
    assert reloaded(queued).status == "queued"


def test_delete_action_soft_deletes_and_protected_image_gets_a_message(operator, make_image):
    doomed = make_image(status="active", properties={"a": "b"})
    kept = make_image(status="active", protected=True)

    page = run_action(operator, "/admin/images/image/", "delete_images", doomed.id, kept.id)

    assert f"Image {kept.id} is protected and cannot be deleted." in page
    assert "1 image deleted." in page
    assert (reloaded(doomed).status, reloaded(doomed).deleted) == ("deleted", True)
    assert not ImageProperty.objects.filter(image=doomed).exists()
    assert (reloaded(kept).status, reloaded(kept).deleted) == ("active", False)


# --- tasks -------------------------------------------------------------------------------------


def make_task(image_id="i-1", **fields) -> Task:
    fields.setdefault("input", {"import_req": {"method": {"name": "glance-direct"}}})
    return Task.objects.create(owner="project-a", image_id=image_id, **fields)


def test_task_list_shows_progress_and_marks_stuck_imports(operator, admin, settings):
    old = timezone.now() - timedelta(seconds=settings.IMPORT_STALE_SECONDS + 60)
    stuck = make_task(status="processing", bytes_done=30, bytes_total=120, heartbeat_at=old)
    fresh = make_task(
        status="processing", bytes_done=60, bytes_total=120, heartbeat_at=timezone.now()
    )

    response = operator.get("/admin/tasks/task/")

    page = response.content.decode()
    assert f'<span class="task-status task-stuck" data-task="{stuck.id}">processing (stuck)' in page
    assert f'<span class="task-status" data-task="{fresh.id}">processing</span>' in page
    assert '<progress max="100" value="25"></progress>' in page
    assert '<progress max="100" value="50"></progress>' in page
    assert "/admin/tasks/task/progress/" in page
    assert listed_ids(operator.get("/admin/tasks/task/?stuck=yes")) == {stuck.id}
    assert listed_ids(operator.get("/admin/tasks/task/?status__exact=processing")) == {
        stuck.id,
        fresh.id,
    }


def test_task_pages_are_read_only(operator):
    task = make_task(status="failure", message="boom", result={"a": 1})

    detail = operator.get(f"/admin/tasks/task/{task.id}/change/")
    post = operator.post(f"/admin/tasks/task/{task.id}/change/", {"message": "changed"})

    assert detail.status_code == 200
    assert "boom" in detail.content.decode()
    assert 'name="_save"' not in detail.content.decode()
    assert post.status_code == 403
    assert operator.get("/admin/tasks/task/add/").status_code == 403
    assert reloaded_task(task).message == "boom"


def reloaded_task(task: Task) -> Task:
    return Task.objects.get(pk=task.pk)


def test_progress_endpoint_returns_running_tasks_percent(operator):
    running = make_task(status="processing", bytes_done=50, bytes_total=200)
    pending = make_task(status="pending")
    done = make_task(status="success", bytes_done=200, bytes_total=200)

    everything_running = operator.get("/admin/tasks/task/progress/").json()
    named = operator.get(f"/admin/tasks/task/progress/?id={done.id}&id={running.id}").json()

    assert {task["id"]: task["percent"] for task in everything_running["tasks"]} == {
        running.id: 25,
        pending.id: None,
    }
    assert {task["id"]: (task["status"], task["running"]) for task in named["tasks"]} == {
        done.id: ("success", False),
        running.id: ("processing", True),
    }


def test_task_list_query_count_does_not_grow_with_tasks(operator, django_assert_max_num_queries):
    for number in range(50):
        make_task(image_id=f"image-{number}", status="processing", bytes_done=1, bytes_total=2)

    with django_assert_max_num_queries(6):
        response = operator.get("/admin/tasks/task/")

    assert len(listed_ids(response)) == 50


def stage_and_fail_import(owner, image) -> Task:
    """A glance-direct import refused for a format mismatch: image back to uploading, staged."""
    client = owner.client()
    client.put(f"/v2/images/{image.id}/stage", data=DATA, content_type=OCTET, HTTP_ACCEPT=JSON)
    client.post(
        f"/v2/images/{image.id}/import",
        data='{"method": {"name": "glance-direct"}}',
        content_type="application/json",
        HTTP_ACCEPT=JSON,
    )
    return Task.objects.get(image_id=image.id)


def test_retry_import_creates_a_new_task_and_activates_the_image(
    operator, admin, owner, make_image
):
    image = make_image(disk_format="qcow2", container_format="bare")
    failed = stage_and_fail_import(owner, image)
    assert (failed.status, reloaded(image).status) == ("failure", "uploading")
    Image.objects.filter(pk=image.pk).update(disk_format="raw")

    page = run_action(operator, "/admin/tasks/task/", "retry_imports", failed.id)

    retried = Task.objects.exclude(pk=failed.pk).get(image_id=image.id)
    assert f"Task {failed.id}: retried as task {retried.id} (success)." in page
    assert retried.input["backend"] == failed.input["backend"]
    assert (retried.owner, retried.user_id) == (admin.project_id, admin.user.keystone_id)
    assert reloaded(image).status == "active"
    assert reloaded_task(failed).status == "failure"


def test_retry_import_of_an_image_without_staged_data_is_refused(operator, make_image):
    image = make_image(status="active")
    failed = make_task(image_id=image.id, status="failure", message="boom")

    page = run_action(operator, "/admin/tasks/task/", "retry_imports", failed.id)

    assert f"Image {image.id} is active without staged data; stage it again." in page
    assert Task.objects.count() == 1


# --- identity: tokens --------------------------------------------------------------------------


def test_issuing_a_token_shows_it_once_and_stores_only_its_digest(operator, owner):
    response = operator.post(
        "/admin/identity/apitoken/add/", {"user": owner.user.pk, "description": "ci"}
    )

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    raw = re.search(r'<code id="issued-token"[^>]*>([^<]+)</code>', response.content.decode())[1]
    token = ApiToken.objects.get(user=owner.user, description="ci")
    assert (token.digest, token.prefix) == (hash_token(raw), raw[:8])
    assert raw not in operator.get(f"/admin/identity/apitoken/{token.pk}/change/").content.decode()
    assert raw not in operator.get("/admin/identity/apitoken/").content.decode()
    assert owner.client().get("/v2/images", HTTP_X_AUTH_TOKEN=raw).status_code == 200


def test_revoke_action_revokes_and_the_token_stops_working(operator, owner):
    token = ApiToken.objects.get(user=owner.user)
    assert owner.client().get("/v2/images").status_code == 200

    page = run_action(operator, "/admin/identity/apitoken/", "revoke_tokens", token.pk)

    assert "1 token revoked." in page
    assert reloaded_token(token).revoked_at is not None
    assert owner.client().get("/v2/images", HTTP_ACCEPT=JSON).status_code == 401


def reloaded_token(token: ApiToken) -> ApiToken:
    return ApiToken.objects.get(pk=token.pk)


def test_identity_list_pages_answer_in_bounded_queries(
    operator, personas, django_assert_max_num_queries
):
    for url in (
        "/admin/identity/user/",
        "/admin/identity/apitoken/",
        "/admin/identity/project/",
        "/admin/identity/role/",
    ):
        with django_assert_max_num_queries(8):
            response = operator.get(url)
        assert response.status_code == 200


def test_granting_admin_role_in_console_lets_the_user_in(operator, owner):
    admin_role = owner.user.roles.model.objects.get(name="admin")
    data = {
        "username": owner.user.username,
        "project": owner.user.project_id,
        "roles": [*owner.user.roles.values_list("pk", flat=True), admin_role.pk],
        "is_active": "on",
        "date_joined_0": "2024-01-01",
        "date_joined_1": "00:00:00",
    }

    response = operator.post(f"/admin/identity/user/{owner.user.pk}/change/", data)

    assert response.status_code == 302
    assert "admin" in reloaded_user(owner).role_names()
    assert reloaded_user(owner).is_staff is True
    client = Client()
    client.force_login(owner.user)
    assert client.get("/admin/").status_code == 200


def reloaded_user(persona):
    return type(persona.user).objects.get(pk=persona.user.pk)
