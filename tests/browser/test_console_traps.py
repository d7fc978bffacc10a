"""The three console traps an operator used to fall into, in a real browser: an import settings
page that changed the chain when saved unchanged, a first protection rule that silently hid
every other property, and a retry that ran as the operator."""

from __future__ import annotations

import dataclasses

from images.models import PropertyProtection
from importplugins import import_settings
from importplugins.models import ImportSettings
from tasks.models import Task
from tests.browser.test_operator_console import Api, success_messages


def chain() -> list[str]:
    return import_settings.current().import_plugins


def save_settings(**changes) -> None:
    values = dataclasses.replace(import_settings.environment_values(), **changes)
    import_settings.apply(values)


def plugin_rows(page) -> list[str]:
    """The selected plugin of every chain row the page shows (not Django's hidden template)."""
    rows = page.locator("select[name^='plugin_steps-'][name$='-name']:not([name*='__prefix__'])")
    return [rows.nth(number).input_value() for number in range(rows.count())]


def test_import_settings_saved_unchanged_keep_the_chain_and_warn_about_idle_inject_pairs(
    console, tmp_path
):
    save_settings(import_plugins=["no_op"])
    console.goto("/admin/importplugins/importsettings/")

    assert plugin_rows(console) == ["no_op"]
    assert console.locator("#effective-chain li").all_inner_texts() == ["no_op"]
    for _ in range(2):
        console.click("input[name=_save]")
        console.wait_for_load_state()
        assert any("was changed successfully" in text for text in success_messages(console))
        assert chain() == ["no_op"]
        console.goto("/admin/importplugins/importsettings/")

    # A row added and left alone starts blank and is not saved.
    console.click(".add-row a")
    assert plugin_rows(console) == ["no_op", ""]
    console.fill("#id_inject_metadata_properties", "ingested_by:operator")
    console.click("input[name=_save]")
    console.wait_for_load_state()
    console.screenshot(path=tmp_path / "import-settings-warning.png", full_page=True)

    assert chain() == ["no_op"]
    warnings = console.locator("ul.messagelist li.warning").all_inner_texts()
    assert warnings == [
        "Inject metadata properties are set, but inject_image_metadata is not in the plugin "
        "chain: no import will get them. Add it to the chain, or clear the pairs."
    ]
    console.goto("/admin/importplugins/importsettings/")
    assert "inject_image_metadata is not in the plugin chain" in console.inner_text(
        "#inject-warning"
    )


def test_import_settings_add_page_starts_from_the_environment_chain(console, settings):
    settings.IMAGE_IMPORT_PLUGINS = ["image_decompression", "no_op"]
    console.goto("/admin/importplugins/importsettings/")

    assert plugin_rows(console) == ["image_decompression", "no_op"]
    console.click("input[name=_save]")
    console.wait_for_load_state()

    assert ImportSettings.objects.exists()
    assert chain() == ["image_decompression", "no_op"]
    assert console.locator("#effective-chain li").all_inner_texts() == [
        "image_decompression",
        "no_op",
    ]


def fill_rule(page, pattern: str, role: str) -> None:
    page.fill("#id_position", "1")
    page.fill("#id_pattern", pattern)
    page.select_option("#id_rule_format", "roles")
    for operation in ("create", "read", "update", "delete"):
        page.fill(f"#id_{operation}_rule", role)


def test_first_protection_rule_previews_what_it_hides_and_offers_a_catch_all(
    console, live_server, owner, make_image, tmp_path
):
    image = make_image(
        name="guarded",
        disk_format="raw",
        container_format="bare",
        properties={"secret": "s1", "os_distro": "cirros", "hw_disk_bus": "virtio"},
    )
    make_image(name="other", properties={"os_distro": "fedora"})
    console.goto("/admin/images/propertyprotection/")
    assert "No rules: everything is allowed." in console.inner_text("#protections-empty")

    console.goto("/admin/images/propertyprotection/add/")
    fill_rule(console, "^secret$", "admin")
    console.click("input[name=_save]")
    console.wait_for_load_state()
    console.screenshot(path=tmp_path / "protection-preview.png", full_page=True)

    assert console.inner_text(".errorlist.nonfield") == (
        "After this, 2 properties on 2 images become unreadable for everyone, admins included: "
        "hw_disk_bus, os_distro. There is no catch-all rule: any property no rule matches is "
        "denied to everyone, and cannot be created either. Tick “Add a catch-all rule”, or save "
        "again to go ahead."
    )
    assert not PropertyProtection.objects.exists()

    console.check("#id_add_catch_all")
    console.click("input[name=_save]")
    console.wait_for_load_state()

    assert any("was added successfully" in text for text in success_messages(console))
    rules = PropertyProtection.objects.values_list("position", "pattern", "read_rule")
    assert list(rules) == [(1, "^secret$", "admin"), (2, ".*", "@")]
    shown = Api(live_server, owner).image(image.id)
    assert (shown["os_distro"], shown["hw_disk_bus"]) == ("cirros", "virtio")
    assert "secret" not in shown
    assert console.locator("#protections-empty, #protections-no-catch-all").count() == 0


def test_property_tester_answers_beside_the_policy_explain_form(console, owner):
    PropertyProtection.objects.create(
        position=1,
        pattern="^secret$",
        create_rule="admin",
        read_rule="admin",
        update_rule="admin",
        delete_rule="admin",
    )

    def ask(operation: str, name: str) -> tuple[str, str]:
        console.goto("/admin/policy/")
        console.fill("#id_property-user", owner.user.username)
        console.select_option("#id_property-operation", operation)
        console.fill("#id_property-name", name)
        console.click("#property-test-form input[type=submit]")
        console.wait_for_load_state()
        answer = console.locator("#property-answer")
        return answer.locator("h2").inner_text(), answer.locator("tr").nth(2).inner_text()

    assert ask("read", "secret") == (
        "DENIED",
        "Why\tFirst matching rule [^secret$] (roles): read = admin",
    )
    assert ask("create", "os_distro") == (
        "DENIED",
        "Why\tNo rule matches this name, and no match denies (there is no catch-all).",
    )
    assert console.locator("#explain-form").count() == 1


def test_retry_runs_as_the_original_caller_with_injected_metadata(
    console, live_server, owner, tmp_path
):
    save_settings(
        import_plugins=["inject_image_metadata"],
        inject_metadata_properties="ingested_by:pipeline",
        ignore_user_roles=["admin"],
    )
    api = Api(live_server, owner)
    image = api.create_image(name="retried", disk_format="qcow2")
    assert api.stage(image["id"]).status_code == 204
    assert api.glance_direct(image["id"]).status_code == 202
    failed = Task.objects.get(image_id=image["id"])
    assert (failed.status, api.image(image["id"])["status"]) == ("failure", "uploading")

    console.goto(f"/admin/images/image/{image['id']}/change/")
    console.select_option("#id_disk_format", "raw")
    console.click("input[name=_save]")
    console.wait_for_load_state()
    console.goto(f"/admin/images/image/{image['id']}/change/")
    console.click("#image-retry")
    console.wait_for_load_state()
    console.screenshot(path=tmp_path / "retry-confirmation.png", full_page=True)
    assert "retried" in console.inner_text("#confirm-objects")
    console.click("#confirm-yes")
    console.wait_for_load_state()

    retried = Task.objects.exclude(pk=failed.pk).get(image_id=image["id"])
    assert f"Task {failed.id}: retried as task {retried.id} (success)." in success_messages(console)
    assert (retried.owner, retried.user_id) == (owner.project_id, owner.user.keystone_id)
    shown = api.image(image["id"])
    assert (shown["status"], shown["ingested_by"]) == ("active", "pipeline")
    listed = api.request("GET", f"/images/{image['id']}/tasks").json()["tasks"]
    assert {task["id"] for task in listed} == {failed.id, retried.id}
