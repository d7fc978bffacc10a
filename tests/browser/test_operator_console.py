"""The operator console in a real browser: what a page shows, and what it changes in the API.

Each scenario drives the console with Playwright against the live server and checks the effect
with ``requests`` against the same server (persona tokens in X-Auth-Token) or in the database.
"""

from __future__ import annotations

import requests

from images.models import Image, PropertyProtection
from imageservice.policy_admin import explain
from importplugins.models import ImportSettings
from tasks.models import Task
from tests.browser.conftest import login

DATA = b"browser staged bytes " * 2048
PATCH = "application/openstack-images-v2.1-json-patch"


class Api:
    """The Image API of the live server as one persona."""

    def __init__(self, live_server, persona) -> None:
        self.base = f"{live_server.url}/v2"
        self.session = requests.Session()
        self.session.headers["X-Auth-Token"] = persona.token

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        return self.session.request(method, f"{self.base}{path}", timeout=30, **kwargs)

    def create_image(self, **fields) -> dict:
        response = self.request("POST", "/images", json={"container_format": "bare", **fields})
        assert response.status_code == 201, response.text
        return response.json()

    def image(self, image_id: str) -> dict:
        response = self.request("GET", f"/images/{image_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def stage(self, image_id: str, data: bytes = DATA) -> requests.Response:
        return self.request(
            "PUT",
            f"/images/{image_id}/stage",
            data=data,
            headers={"Content-Type": "application/octet-stream"},
        )

    def glance_direct(self, image_id: str) -> requests.Response:
        return self.request(
            "POST", f"/images/{image_id}/import", json={"method": {"name": "glance-direct"}}
        )


def success_messages(page) -> list[str]:
    return page.locator("ul.messagelist li.success").all_inner_texts()


def test_import_settings_saved_in_the_console_inject_metadata(
    console, live_server, owner, tmp_path
):
    console.goto("/admin/importplugins/importsettings/")
    assert "/admin/importplugins/importsettings/add/" in console.url
    console.fill("#id_inject_metadata_properties", "ingested_by:operator")
    console.fill("#id_plugin_steps-0-position", "1")
    console.select_option("#id_plugin_steps-0-name", "inject_image_metadata")
    console.click("input[name=_save]")
    console.wait_for_load_state()
    console.screenshot(path=tmp_path / "import-settings.png", full_page=True)

    assert any("was added successfully" in text for text in success_messages(console))
    assert console.input_value("#id_inject_metadata_properties") == "ingested_by:operator"
    row = ImportSettings.objects.get()
    assert list(row.plugin_steps.values_list("name", flat=True)) == ["inject_image_metadata"]

    api = Api(live_server, owner)
    image = api.create_image(name="injected", disk_format="raw")
    assert api.stage(image["id"]).status_code == 204
    assert api.glance_direct(image["id"]).status_code == 202
    shown = api.image(image["id"])
    assert shown["status"] == "active"
    assert shown["ingested_by"] == "operator"


def test_protection_added_in_the_console_hides_and_guards_the_property(
    console, live_server, admin, owner, make_image, tmp_path
):
    image = make_image(
        name="guarded", disk_format="raw", container_format="bare", properties={"secret": "s1"}
    )
    api = Api(live_server, owner)
    assert api.image(image.id)["secret"] == "s1"

    console.goto("/admin/images/propertyprotection/add/")
    console.fill("#id_position", "1")
    console.fill("#id_pattern", "^secret$")
    console.select_option("#id_rule_format", "roles")
    for operation, rule in (("create", "admin"), ("read", "admin"), ("update", "admin")):
        console.fill(f"#id_{operation}_rule", rule)
    console.fill("#id_delete_rule", "admin")
    console.click("input[name=_save]")
    console.wait_for_load_state()
    console.screenshot(path=tmp_path / "protection.png", full_page=True)

    assert any("was added successfully" in text for text in success_messages(console))
    assert console.locator("#result_list").get_by_text("^secret$").count() == 1
    assert PropertyProtection.objects.get().read_rule == "admin"

    assert "secret" not in api.image(image.id)
    response = api.request(
        "PATCH",
        f"/images/{image.id}",
        data='[{"op": "replace", "path": "/secret", "value": "changed"}]',
        headers={"Content-Type": PATCH},
    )
    # Unreadable to the owner, the property does not exist for a replace: Glance's 409.
    assert response.status_code == 409, response.text
    response = api.request(
        "PATCH",
        f"/images/{image.id}",
        data='[{"op": "add", "path": "/secret", "value": "changed"}]',
        headers={"Content-Type": PATCH},
    )
    assert response.status_code == 403, response.text
    assert image.properties.get(name="secret").value == "s1"
    assert Api(live_server, admin).image(image.id)["secret"] == "s1"


def test_failed_import_is_retried_from_the_tasks_page(console, live_server, owner, tmp_path):
    api = Api(live_server, owner)
    image = api.create_image(name="retried", disk_format="qcow2")
    assert api.stage(image["id"]).status_code == 204
    assert api.glance_direct(image["id"]).status_code == 202
    assert api.image(image["id"])["status"] == "uploading"
    failed = Task.objects.get(image_id=image["id"])
    assert failed.status == "failure"

    console.goto(f"/admin/images/image/{image['id']}/change/")
    console.select_option("#id_disk_format", "raw")
    console.click("input[name=_save]")
    console.wait_for_load_state()
    assert any("was changed successfully" in text for text in success_messages(console))
    assert api.image(image["id"])["disk_format"] == "raw"

    console.goto("/admin/tasks/task/")
    console.check(f"input[name=_selected_action][value='{failed.id}']")
    console.select_option("select[name=action]", "retry_imports")
    console.click("button[name=index]")
    console.wait_for_load_state()
    assert Task.objects.filter(image_id=image["id"]).count() == 1  # asked first
    console.click("#confirm-yes")
    console.wait_for_load_state()
    console.screenshot(path=tmp_path / "retry.png", full_page=True)

    retried = Task.objects.exclude(pk=failed.pk).get(image_id=image["id"])
    assert f"Task {failed.id}: retried as task {retried.id} (success)." in success_messages(console)
    assert api.image(image["id"])["status"] == "active"


def test_policy_explain_form_answers_per_user(
    console, live_server, admin, owner, member, make_image, tmp_path
):
    def ask(username: str) -> str:
        console.goto("/admin/policy/")
        console.fill("#id_user", username)
        console.select_option("#id_action", "copy_image")
        console.click("#explain-form input[type=submit]")
        console.wait_for_load_state()
        return console.inner_text("#explanation h2")

    assert ask(member.user.username) == "DENIED"
    assert ask(admin.user.username) == "ALLOWED"
    console.screenshot(path=tmp_path / "policy.png", full_page=True)
    assert "copy_image" in console.inner_text("#explanation")

    assert explain(member.user.username, "copy_image").verdict == "denied"
    shared = make_image(
        status="active",
        visibility="shared",
        disk_format="raw",
        container_format="bare",
        members={member.project_id: "accepted"},
    )
    response = Api(live_server, member).request(
        "POST", f"/images/{shared.id}/import", json={"method": {"name": "copy-image"}}
    )
    assert response.status_code == 403, response.text
    assert Image.objects.get(pk=shared.pk).status == "active"


def test_user_without_the_admin_role_cannot_open_the_console(page, owner, tmp_path):
    owner.user.set_password("owner-pw")
    owner.user.save()

    login(page, owner.user.username, "owner-pw")
    page.screenshot(path=tmp_path / "refused.png", full_page=True)

    assert "/admin/login/" in page.url
    assert page.locator("p.errornote").count() == 1
    page.goto("/admin/")
    assert "/admin/login/" in page.url
    assert page.locator("#id_username").count() == 1
