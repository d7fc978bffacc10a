"""The console's guard rails, without a browser: the project chooser, the confirmation pages,
the retry as the original caller, the protection rule preview and tester, the import chain rows,
the task page and the service page."""

from __future__ import annotations

import pytest
from django.test import Client

from images.models import Image, ImageMember, PropertyProtection
from importplugins import import_settings
from tasks.models import Task
from tests.test_admin import ask_action, image_form, inline, stage_and_fail_import

OPERATIONS = ("create", "read", "update", "delete")


@pytest.fixture
def operator(admin) -> Client:
    client = Client()
    client.force_login(admin.user)
    return client


# --- owner and members chosen among known projects ---------------------------------------------


def test_typo_in_owner_is_refused_and_nothing_is_saved(operator, make_image):
    image = make_image(name="kept")

    response = operator.post(
        f"/admin/images/image/{image.id}/change/",
        image_form(image, owner="0f0f0f0f-typo", name="renamed"),
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["owner"] == [
        "No project has the ID or name '0f0f0f0f-typo'. Choose one of the listed projects; "
        "nothing was saved."
    ]
    assert Image.objects.get(pk=image.pk).name == "kept"


def test_owner_given_by_project_name_is_saved_as_its_id(operator, make_image, outsider):
    image = make_image()

    response = operator.post(
        f"/admin/images/image/{image.id}/change/", image_form(image, owner="project-c")
    )

    assert response.status_code == 302
    assert Image.objects.get(pk=image.pk).owner == outsider.project_id


def test_typo_in_member_is_refused(operator, make_image):
    image = make_image(visibility="shared")
    data = {
        **image_form(image),
        **inline("members", [{"member_id": "no-such-project", "status": "pending"}], 0),
    }

    response = operator.post(f"/admin/images/image/{image.id}/change/", data)

    assert response.status_code == 200
    members = next(
        inline.formset
        for inline in response.context["inline_admin_formsets"]
        if inline.formset.prefix == "members"
    )
    assert members.errors[0]["member_id"][0].startswith(
        "No project has the ID or name 'no-such-project'."
    )
    assert not ImageMember.objects.exists()


# --- confirmations -----------------------------------------------------------------------------


def test_delete_action_asks_first_and_lists_the_protected_images(operator, make_image):
    plain = make_image(name="plain", size=2048)
    kept = make_image(name="kept", protected=True)

    page = ask_action(operator, "/admin/images/image/", "delete_images", plain.id, kept.id)

    assert "Are you sure you want to delete these images?" in page
    assert "<td>2.0\xa0KB</td>" in page
    assert "refused: protected" in page
    assert '<input type="hidden" name="post" value="yes">' in page
    assert not Image.objects.filter(deleted=True).exists()


def test_retry_button_page_is_the_retry_confirmation(operator, owner, make_image):
    image = make_image(disk_format="qcow2", container_format="bare")
    failed = stage_and_fail_import(owner, image)

    task_page = operator.get(f"/admin/tasks/task/{failed.id}/change/").content.decode()
    image_page = operator.get(f"/admin/images/image/{image.id}/change/").content.decode()
    confirmation = operator.get(f"/admin/tasks/task/{failed.id}/retry/")

    assert f'href="/admin/tasks/task/{failed.id}/retry/"' in task_page
    assert f'href="/admin/tasks/task/{failed.id}/retry/"' in image_page
    assert f'href="/admin/tasks/task/?image_id={image.id}"' in image_page
    assert confirmation.status_code == 200
    assert [row.refusal for row in confirmation.context["rows"]] == [None]
    assert Task.objects.count() == 1
    assert operator.get("/admin/tasks/task/nope/retry/").status_code == 404


def test_retry_confirmation_says_why_a_task_cannot_be_retried(operator, make_image):
    image = make_image(status="active")
    done = Task.objects.create(owner="p", image_id=image.id, status="success", input={})

    page = ask_action(operator, "/admin/tasks/task/", "retry_imports", done.id)

    assert "refused: the task is success, not failed" in page
    assert 'id="confirm-yes"' not in page


def test_retry_keeps_the_original_callers_credentials(admin, owner, make_image):
    image = make_image(disk_format="qcow2", container_format="bare")
    failed = stage_and_fail_import(owner, image)

    assert failed.input["caller"] == {
        "user_id": owner.user.keystone_id,
        "project_id": owner.project_id,
        "roles": ["member", "reader"],
        "user_domain_id": None,
        "project_domain_id": None,
        "is_admin_project": True,
    }


# --- property protections ---------------------------------------------------------------------


def rule(pattern: str, role: str = "admin", position: int = 1, **extra) -> dict:
    return {
        "position": position,
        "pattern": pattern,
        "rule_format": "roles",
        **{f"{operation}_rule": role for operation in OPERATIONS},
        **extra,
    }


def test_rule_hiding_held_properties_stops_once_then_saves(operator, owner, make_image):
    image = make_image(properties={"os_distro": "cirros", "secret": "s"})

    first = operator.post("/admin/images/propertyprotection/add/", rule("^secret$"))
    [preview] = first.context["adminform"].form.non_field_errors()
    seen = first.context["adminform"].form.data["preview_seen"]
    again = operator.post(
        "/admin/images/propertyprotection/add/", rule("^secret$", preview_seen=seen)
    )

    assert first.status_code == 200
    assert preview.startswith(
        "After this, 1 property on 1 image become unreadable for everyone, admins included: "
        "os_distro."
    )
    assert again.status_code == 302
    assert list(PropertyProtection.objects.values_list("pattern", flat=True)) == ["^secret$"]
    shown = owner.client().get(f"/v2/images/{image.id}").json()
    assert "os_distro" not in shown and "secret" not in shown


def test_rule_under_a_catch_all_saves_without_a_preview(operator, make_image):
    make_image(properties={"os_distro": "cirros"})
    PropertyProtection.objects.create(
        position=9, pattern=".*", **{f"{operation}_rule": "@" for operation in OPERATIONS}
    )

    response = operator.post("/admin/images/propertyprotection/add/", rule("^secret$"))

    assert response.status_code == 302
    assert PropertyProtection.objects.count() == 2


def test_property_tester_answers_for_a_local_user(operator, owner):
    PropertyProtection.objects.create(position=1, pattern="^x_", read_rule="@")

    page = operator.get(
        "/admin/policy/",
        {
            "property-user": owner.user.username,
            "property-operation": "read",
            "property-name": "x_a",
        },
    ).content.decode()

    assert "<h2>ALLOWED</h2>" in page
    assert "First matching rule [^x_] (roles): read = @" in page


# --- import settings --------------------------------------------------------------------------


def test_blank_chain_row_is_not_saved(operator):
    values = import_settings.environment_values()
    import_settings.apply(values)
    row = import_settings.ImportSettings.objects.get()
    [step] = row.plugin_steps.all()
    data = {
        "inject_metadata_properties": "",
        "ignore_user_roles": "admin",
        "image_conversion_output_format": "raw",
        **inline(
            "plugin_steps",
            [{"id": step.pk, "position": 1, "name": "no_op"}, {"position": 0, "name": ""}],
            1,
        ),
    }

    response = operator.post(f"/admin/importplugins/importsettings/{row.pk}/change/", data)

    assert response.status_code == 302
    assert import_settings.current().import_plugins == ["no_op"]


def test_chain_row_with_a_position_but_no_plugin_is_refused(operator):
    import_settings.apply(import_settings.environment_values())
    row = import_settings.ImportSettings.objects.get()
    data = {
        "inject_metadata_properties": "",
        "ignore_user_roles": "admin",
        "image_conversion_output_format": "raw",
        **inline("plugin_steps", [{"position": 2, "name": ""}], 0),
    }

    response = operator.post(f"/admin/importplugins/importsettings/{row.pk}/change/", data)

    assert response.status_code == 200
    assert "Choose a plugin, or delete the row." in response.content.decode()


# --- pages ------------------------------------------------------------------------------------


def test_task_input_is_a_table(operator, owner, make_image):
    image = make_image(disk_format="qcow2", container_format="bare")
    failed = stage_and_fail_import(owner, image)

    page = operator.get(f"/admin/tasks/task/{failed.id}/change/").content.decode()

    assert "<tr><th>import_req.method.name</th><td><code>glance-direct</code></td></tr>" in page
    assert "<tr><th>caller.roles</th><td><code>member, reader</code></td></tr>" in page


def test_view_site_points_at_the_service_page(operator):
    index = operator.get("/admin/").content.decode()
    about = operator.get("/admin/about/").content.decode()

    assert '<a href="/admin/about/">View site</a>' in index
    assert "http://testserver/v2/" in about and "docs/operator.md" in about
