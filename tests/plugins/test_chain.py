"""The chain: settings snapshot, loading by entry point in configured order, running."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import zipfile

import pytest

from importplugins.base import ImportPluginError
from importplugins.chain import import_settings_snapshot, load_chain, run_chain
from importplugins.decompression import ImageDecompression
from importplugins.inject_metadata import InjectImageMetadata
from importplugins.no_op import NoOp
from importplugins.registry import installed_plugins
from tasks.runner import plugin_failure_message

BUILT_INS = {"no_op", "inject_image_metadata", "image_conversion", "image_decompression"}
IMAGE = b"guest disk " * 10_000


def test_snapshot_captures_plugin_settings_as_json(settings):
    settings.IMAGE_IMPORT_PLUGINS = ["image_decompression", "inject_image_metadata"]
    settings.INJECT_METADATA_PROPERTIES = "region:eu-1"
    settings.IGNORE_USER_ROLES = ["admin", "operator"]
    settings.IMAGE_CONVERSION_OUTPUT_FORMAT = "qcow2"
    settings.IMAGE_SIZE_CAP = 5000

    snapshot = import_settings_snapshot()

    assert json.loads(json.dumps(snapshot)) == {
        "import_plugins": ["image_decompression", "inject_image_metadata"],
        "inject_metadata_properties": {"region": "eu-1"},
        "ignore_user_roles": ["admin", "operator"],
        "image_conversion_output_format": "qcow2",
        "image_conversion_timeout": 3600,
        "image_size_cap": 5000,
    }


def test_snapshot_refuses_malformed_inject_setting(settings):
    settings.INJECT_METADATA_PROPERTIES = "region"

    with pytest.raises(ImportPluginError) as refused:
        import_settings_snapshot()

    assert refused.value.message == (
        "INJECT_METADATA_PROPERTIES is invalid: expected key:value, got 'region'"
    )
    assert refused.value.permanent is True


def test_installed_plugins_lists_built_ins_with_descriptions():
    installed = installed_plugins()

    assert set(installed) >= BUILT_INS
    assert installed["no_op"] == "Does nothing; proves that the import plugin chain runs."


def test_load_chain_keeps_configured_order():
    chain = load_chain(["inject_image_metadata", "no_op", "image_decompression"])

    assert [type(plugin) for plugin in chain] == [InjectImageMetadata, NoOp, ImageDecompression]


def test_load_chain_refuses_unknown_plugin():
    with pytest.raises(ImportPluginError) as refused:
        load_chain(["no_op", "image_decompresion"])

    assert refused.value.message == "Unknown import plugin: image_decompresion"
    assert refused.value.permanent is True


def test_run_chain_runs_plugins_in_configured_order(make_context):
    settings = {
        "import_plugins": ["image_decompression", "inject_image_metadata"],
        "inject_metadata_properties": {"region": "eu-1"},
    }
    context = make_context(gzip.compress(IMAGE), settings=settings)

    run_chain(context)

    assert context.data_path.read_bytes() == IMAGE
    assert context.properties == {"region": "eu-1"}


def test_run_chain_runs_nothing_for_copy_image(make_context):
    data = gzip.compress(IMAGE)
    settings = {
        "import_plugins": ["image_decompression", "inject_image_metadata"],
        "inject_metadata_properties": {"region": "eu-1"},
    }
    context = make_context(data, method="copy-image", settings=settings)

    run_chain(context)

    assert (context.properties, context.data_changed) == ({}, False)
    assert context.data_path.read_bytes() == data


def test_run_chain_fails_import_on_unknown_plugin(make_context):
    context = make_context(IMAGE, settings={"import_plugins": ["no_op", "nope"]})

    with pytest.raises(ImportPluginError) as refused:
        run_chain(context)

    assert (refused.value.message, refused.value.permanent) == ("Unknown import plugin: nope", True)


def test_third_party_plugin_loads_through_its_entry_point(make_context):
    # tests/thirdparty_plugin is a separate distribution (pip install -e tests/thirdparty_plugin);
    # nothing here imports it, so only its entry point can bring it in.
    assert "add_checksum_note" in installed_plugins()
    settings = {"import_plugins": ["image_decompression", "add_checksum_note"]}
    context = make_context(gzip.compress(IMAGE), settings=settings)

    run_chain(context)

    assert context.properties == {"checksum_note": f"sha256:{hashlib.sha256(IMAGE).hexdigest()}"}


def test_run_chain_names_the_plugin_that_failed(make_context):
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("a.img", IMAGE)
        archive.writestr("b.img", IMAGE)
    context = make_context(zipped.getvalue(), settings={"import_plugins": ["image_decompression"]})

    with pytest.raises(ImportPluginError) as refused:
        run_chain(context)

    assert (refused.value.plugin, refused.value.message) == (
        "image_decompression",
        "Archive contains more than one file.",
    )
    assert plugin_failure_message(refused.value) == (
        "Import plugin image_decompression failed: Archive contains more than one file. "
        "Retrying will fail again until the cause above is fixed."
    )
