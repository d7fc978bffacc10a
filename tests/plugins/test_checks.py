"""The start-up checks refuse plugin settings that would fail every import, and warn when
image_conversion would run without qemu-img."""

from __future__ import annotations

import dataclasses
import io

import pytest
from django.core.management import call_command

from importplugins import import_settings
from importplugins.checks import check_conversion_tool, check_import_plugins

QEMU_IMG_HINT = (
    "Install qemu-img (Debian/Ubuntu package qemu-utils; `make system-deps` does) or remove "
    "image_conversion from the chain."
)


def test_default_plugin_settings_pass():
    assert check_import_plugins(None) == []


def test_every_built_in_plugin_passes(settings):
    settings.IMAGE_IMPORT_PLUGINS = [
        "image_decompression",
        "image_conversion",
        "inject_image_metadata",
        "no_op",
    ]

    assert check_import_plugins(None) == []


def test_unknown_plugin_is_named_with_installed_ones_in_hint(settings):
    settings.IMAGE_IMPORT_PLUGINS = ["no_op", "image_decompresion"]

    errors = check_import_plugins(None)

    assert [error.id for error in errors] == ["imageservice.E020"]
    assert (
        errors[0].msg == "IMAGE_IMPORT_PLUGINS names an unknown import plugin: image_decompresion"
    )
    assert errors[0].hint.startswith(
        "Installed plugins (entry points in imageservice.import_plugins): "
    )
    for name in ("image_conversion", "image_decompression", "inject_image_metadata", "no_op"):
        assert name in errors[0].hint


def test_malformed_inject_properties_are_refused(settings):
    settings.INJECT_METADATA_PROPERTIES = "a:1,a:2"

    errors = check_import_plugins(None)

    assert [(error.id, error.msg) for error in errors] == [
        ("imageservice.E021", "INJECT_METADATA_PROPERTIES is invalid: duplicate key 'a'")
    ]


def test_unsupported_conversion_output_format_is_refused(settings):
    settings.IMAGE_CONVERSION_OUTPUT_FORMAT = "vhd"

    assert [error.id for error in check_import_plugins(None)] == ["imageservice.E022"]


def console_chain(*names: str) -> None:
    """Save the console's import settings row with this plugin chain."""
    values = import_settings.environment_values()
    import_settings.apply(dataclasses.replace(values, import_plugins=list(names)))


@pytest.mark.usefixtures("without_qemu_img")
def test_conversion_in_environment_chain_without_qemu_img_warns(settings):
    settings.IMAGE_IMPORT_PLUGINS = ["image_decompression", "image_conversion"]

    warnings = check_conversion_tool(None, databases=["default"])

    assert [(warning.id, warning.msg, warning.hint) for warning in warnings] == [
        (
            "imageservice.W023",
            "The import plugin chain (IMAGE_IMPORT_PLUGINS) includes image_conversion, but "
            "qemu-img is not on PATH: every import it converts will fail.",
            QEMU_IMG_HINT,
        )
    ]


@pytest.mark.usefixtures("without_qemu_img")
def test_conversion_in_console_chain_without_qemu_img_warns(settings):
    settings.IMAGE_IMPORT_PLUGINS = ["no_op"]
    console_chain("image_conversion")

    warnings = check_conversion_tool(None, databases=["default"])

    assert [(warning.id, warning.msg) for warning in warnings] == [
        (
            "imageservice.W023",
            "The import plugin chain (the console's settings) includes image_conversion, but "
            "qemu-img is not on PATH: every import it converts will fail.",
        )
    ]


@pytest.mark.usefixtures("without_qemu_img")
def test_console_chain_without_conversion_overrides_the_environment(settings):
    settings.IMAGE_IMPORT_PLUGINS = ["image_conversion"]
    console_chain("no_op")

    assert check_conversion_tool(None, databases=["default"]) == []


@pytest.mark.usefixtures("without_qemu_img")
def test_chain_without_conversion_does_not_need_qemu_img(settings):
    settings.IMAGE_IMPORT_PLUGINS = ["image_decompression", "no_op"]

    assert check_conversion_tool(None, databases=["default"]) == []


@pytest.mark.usefixtures("qemu_img")
def test_conversion_with_qemu_img_on_path_passes(settings):
    settings.IMAGE_IMPORT_PLUGINS = ["image_conversion"]

    assert check_conversion_tool(None, databases=["default"]) == []


@pytest.mark.usefixtures("without_qemu_img")
def test_missing_qemu_img_is_a_warning_of_the_database_checks(settings):
    settings.IMAGE_IMPORT_PLUGINS = ["image_conversion"]
    output = io.StringIO()

    call_command("check", "--database", "default", stdout=output, stderr=output)

    assert "imageservice.W023" in output.getvalue()
    call_command("check", stdout=output, stderr=output)  # without the database, no warning
    assert output.getvalue().count("imageservice.W023") == 1
