"""Import settings in the database: the Glance conf loader, the environment fallback, the
snapshot an accepted import keeps, the console page and the management command."""

from __future__ import annotations

import dataclasses
from html import escape

import pytest
from django.contrib.admin.models import LogEntry
from django.core.management import CommandError, call_command
from django.test import Client

from importplugins import import_settings
from importplugins.chain import import_settings_snapshot
from importplugins.models import ImportPluginStep, ImportSettings
from tasks.jobs import run_import
from tasks.models import Task
from tasks.web_download import ImportURIRefused, validate_import_uri
from tests.support import reloaded
from tests.test_import import GLANCE_DIRECT, stage, start_import

GLANCE_CONF = """
[image_import_opts]
image_import_plugins = ['image_decompression', 'inject_image_metadata']

[inject_metadata_properties]
ignore_user_roles = admin,operator
inject = "region":"eu-1","support":"tier-2"

[image_conversion]
output_format = qcow2

[import_filtering_opts]
allowed_schemes = [https]
allowed_ports = 443,8443
disallowed_hosts = bad.example
"""


@pytest.fixture
def conf(tmp_path):
    path = tmp_path / "glance-image-import.conf"
    path.write_text(GLANCE_CONF)
    return path


def test_glance_conf_is_parsed_and_missing_options_keep_the_environment(conf, settings):
    settings.IMPORT_ALLOWED_HOSTS = ["mirror.example"]

    values = import_settings.load_glance_conf(conf)

    assert values.import_plugins == ["image_decompression", "inject_image_metadata"]
    assert values.inject_metadata_properties == '"region":"eu-1","support":"tier-2"'
    assert values.ignore_user_roles == ["admin", "operator"]
    assert values.image_conversion_output_format == "qcow2"
    assert values.allowed_schemes == ["https"]
    assert values.allowed_ports == ["443", "8443"]
    assert values.disallowed_hosts == ["bad.example"]
    assert values.allowed_hosts == ["mirror.example"]


def test_command_loads_conf_into_the_database(db, conf, capsys):
    call_command("load_import_settings", str(conf))

    out = capsys.readouterr().out
    assert "import_plugins: image_decompression, inject_image_metadata" in out
    assert list(ImportPluginStep.objects.values_list("name", flat=True)) == [
        "image_decompression",
        "inject_image_metadata",
    ]
    snapshot = import_settings_snapshot()
    assert snapshot["inject_metadata_properties"] == {"region": "eu-1", "support": "tier-2"}
    assert snapshot["image_conversion_output_format"] == "qcow2"
    with pytest.raises(ImportURIRefused, match="scheme http is not allowed"):
        validate_import_uri("http://images.example/x.img")


def test_command_refuses_unknown_plugin(db, tmp_path):
    path = tmp_path / "bad.conf"
    path.write_text("[image_import_opts]\nimage_import_plugins = no_such_plugin\n")

    with pytest.raises(Exception, match="unknown import plugin"):
        call_command("load_import_settings", str(path))
    assert not ImportSettings.objects.exists()


def test_without_a_row_the_environment_applies_and_can_be_seeded(db, settings, capsys):
    settings.IMAGE_IMPORT_PLUGINS = ["no_op"]
    settings.INJECT_METADATA_PROPERTIES = "a:1"
    assert import_settings.current().source == "environment"
    assert import_settings_snapshot()["inject_metadata_properties"] == {"a": "1"}

    call_command("load_import_settings", "--from-environment")
    settings.INJECT_METADATA_PROPERTIES = "b:2"

    values = import_settings.current()
    assert values.source == "database"
    assert values.import_plugins == ["no_op"]
    assert values.inject_metadata_properties == "a:1"
    assert values.allowed_schemes == list(settings.IMPORT_ALLOWED_SCHEMES)


def test_accepted_import_keeps_its_snapshot_after_an_edit(member, make_image, monkeypatch):
    import_settings.apply(
        dataclasses.replace(
            import_settings.environment_values(),
            import_plugins=["inject_image_metadata"],
            inject_metadata_properties="region:eu-1",
            ignore_user_roles=["admin"],
        )
    )
    image = make_image(owner=member.project_id, disk_format="raw", container_format="bare")
    stage(member, image)
    monkeypatch.setattr("tasks.services.async_task", lambda *args, **kwargs: None)
    assert start_import(member, image, GLANCE_DIRECT).status_code == 202
    task = Task.objects.get(image_id=image.id)

    row = ImportSettings.objects.get()
    row.inject_metadata_properties = "region:us-2"
    row.save()
    row.plugin_steps.all().delete()

    assert Task.objects.get(pk=task.pk).input["settings"]["inject_metadata_properties"] == {
        "region": "eu-1"
    }
    run_import(task.id)
    image = reloaded(image)
    assert image.status == "active"
    assert image.property_dict()["region"] == "eu-1"


@pytest.fixture
def operator(admin) -> Client:
    client = Client()
    client.force_login(admin.user)
    return client


def settings_form(steps: list[tuple[int, str]], inject: str) -> dict[str, object]:
    data: dict[str, object] = {
        "inject_metadata_properties": inject,
        "ignore_user_roles": "admin",
        "image_conversion_output_format": "raw",
        "allowed_schemes": "http, https",
        "disallowed_schemes": "",
        "allowed_hosts": "",
        "disallowed_hosts": "",
        "allowed_ports": "80,443",
        "disallowed_ports": "",
        "plugin_steps-TOTAL_FORMS": str(len(steps)),
        "plugin_steps-INITIAL_FORMS": "0",
        "plugin_steps-MIN_NUM_FORMS": "0",
        "plugin_steps-MAX_NUM_FORMS": "1000",
    }
    for index, (position, name) in enumerate(steps):
        data[f"plugin_steps-{index}-position"] = str(position)
        data[f"plugin_steps-{index}-name"] = name
    return data


def test_console_lists_installed_plugins_with_descriptions(operator):
    response = operator.get("/admin/importplugins/importsettings/", follow=True)

    assert response.status_code == 200
    page = response.content.decode()
    assert "inject_image_metadata — Sets INJECT_METADATA_PROPERTIES" in page
    assert "no_op" in page


def test_console_refuses_malformed_inject_pairs(operator):
    response = operator.post(
        "/admin/importplugins/importsettings/add/", settings_form([(1, "no_op")], "os_glance_x: 1")
    )

    assert response.status_code == 200
    assert "is reserved" in response.content.decode()
    assert not ImportSettings.objects.exists()


def test_console_saves_chain_and_inject_pairs_used_by_the_next_import(operator, member, make_image):
    form = settings_form(
        [(2, "inject_image_metadata"), (1, "no_op")], "region: eu-1\nsupport: tier-2\n"
    )

    response = operator.post("/admin/importplugins/importsettings/add/", form)

    assert response.status_code == 302, response.content.decode()[:2000]
    values = import_settings.current()
    assert values.import_plugins == ["no_op", "inject_image_metadata"]
    assert values.allowed_schemes == ["http", "https"]
    image = make_image(owner=member.project_id, disk_format="raw", container_format="bare")
    stage(member, image)
    assert start_import(member, image, GLANCE_DIRECT).status_code == 202
    image = reloaded(image)
    assert image.status == "active"
    properties = image.property_dict()
    assert (properties["region"], properties["support"]) == ("eu-1", "tier-2")


def test_apply_refuses_invalid_settings_and_writes_nothing(db):
    values = dataclasses.replace(
        import_settings.environment_values(), inject_metadata_properties="os_glance_x:1"
    )

    with pytest.raises(import_settings.InvalidImportSettings) as refused:
        import_settings.apply(values)

    assert refused.value.field == "inject_metadata_properties"
    assert str(refused.value).startswith("inject properties are invalid: 'os_glance_x' is reserved")
    assert not ImportSettings.objects.exists()


@pytest.mark.parametrize(
    ("conf", "steps", "field", "message"),
    [
        (
            "[image_import_opts]\nimage_import_plugins = no_such_plugin\n",
            [(1, "no_such_plugin")],
            {},
            "unknown import plugin(s): no_such_plugin",
        ),
        (
            "[image_conversion]\noutput_format = vhdx\n",
            [(1, "no_op")],
            {"image_conversion_output_format": "vhdx"},
            "output format 'vhdx' is not one of qcow2, raw, vmdk",
        ),
    ],
)
def test_console_and_command_refuse_in_the_same_words(
    operator, tmp_path, conf, steps, field, message
):
    path = tmp_path / "glance-image-import.conf"
    path.write_text(conf)

    response = operator.post(
        "/admin/importplugins/importsettings/add/", {**settings_form(steps, ""), **field}
    )
    with pytest.raises(CommandError) as refused:
        call_command("load_import_settings", str(path))

    assert str(refused.value) == message
    assert response.status_code == 200
    assert escape(message) in response.content.decode()
    assert not ImportSettings.objects.exists()


def test_console_saves_through_apply(operator):
    form = settings_form([(5, "inject_image_metadata"), (3, "no_op")], "region: eu-1")

    response = operator.post("/admin/importplugins/importsettings/add/", form)

    assert response.status_code == 302
    row = ImportSettings.objects.get()
    assert list(row.plugin_steps.values_list("position", "name")) == [
        (1, "no_op"),
        (2, "inject_image_metadata"),
    ]
    assert (row.inject_metadata_properties, row.allowed_schemes) == ("region: eu-1", "http,https")
    assert LogEntry.objects.get().object_id == str(row.pk)
