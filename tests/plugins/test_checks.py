"""The start-up check refuses plugin settings that would fail every import."""

from __future__ import annotations

from importplugins.checks import check_import_plugins


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
