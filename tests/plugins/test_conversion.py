"""image_conversion: inspect first, then qemu-img convert to the output format."""

from __future__ import annotations

import json

import pytest

from importplugins.base import ImportPluginError
from importplugins.conversion import ImageConversion
from tests import disk_images
from tests.plugins.conftest import run

MiB = 1024 * 1024
PATTERN = b"imageservice-16B" * (2 * MiB // 16)  # 2 MiB of recognisable guest data


def test_conversion_turns_empty_qcow2_into_raw(make_context, qemu_img, tmp_path):
    source = tmp_path / "blank.qcow2"
    run(qemu_img, "create", "-f", "qcow2", source, "1M")
    context = make_context(source, disk_format="qcow2")
    staged = context.data_path

    ImageConversion().run(context)

    assert context.data_path.parent == context.work_dir
    assert context.data_path.read_bytes() == bytes(MiB)
    assert (context.disk_format, context.container_format) == ("raw", "bare")
    assert (context.virtual_size, context.data_changed) == (MiB, True)
    assert staged.exists()


def test_conversion_preserves_guest_data(make_context, qemu_img, tmp_path):
    raw, source = tmp_path / "guest.raw", tmp_path / "guest.qcow2"
    raw.write_bytes(PATTERN)
    run(qemu_img, "convert", "-f", "raw", "-O", "qcow2", raw, source)
    context = make_context(source, disk_format="qcow2")

    ImageConversion().run(context)

    assert context.data_path.read_bytes() == PATTERN
    assert context.virtual_size == len(PATTERN)


def test_conversion_to_qcow2_output_format(make_context, qemu_img):
    context = make_context(PATTERN, settings={"image_conversion_output_format": "qcow2"})

    ImageConversion().run(context)

    info = json.loads(run(qemu_img, "info", "--output=json", context.data_path))
    assert (info["format"], info["virtual-size"]) == ("qcow2", len(PATTERN))
    assert context.disk_format == "qcow2"
    assert list(context.work_dir.iterdir()) == [context.data_path]


def test_conversion_skips_image_already_in_output_format(make_context):
    context = make_context(PATTERN, disk_format="raw")

    ImageConversion().run(context)

    assert (context.disk_format, context.data_changed) == ("raw", False)
    assert list(context.work_dir.iterdir()) == []


def test_conversion_skips_copy_image(make_context, qemu_img, tmp_path):
    source = tmp_path / "blank.qcow2"
    run(qemu_img, "create", "-f", "qcow2", source, "1M")
    context = make_context(source, disk_format="qcow2", method="copy-image")

    ImageConversion().run(context)

    assert (context.disk_format, context.data_changed) == ("qcow2", False)


def test_conversion_refuses_backing_file_before_running_qemu_img(
    make_context, qemu_img, tmp_path, monkeypatch
):
    base, overlay = tmp_path / "base.qcow2", tmp_path / "overlay.qcow2"
    run(qemu_img, "create", "-f", "qcow2", base, "1M")
    run(qemu_img, "create", "-f", "qcow2", "-b", base, "-F", "qcow2", overlay)
    context = make_context(overlay, disk_format="qcow2")
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))  # qemu-img would not even be found

    with pytest.raises(ImportPluginError) as refused:
        ImageConversion().run(context)

    assert refused.value.message == "Image has disallowed configuration: backing_file"
    assert refused.value.permanent is True
    assert (context.disk_format, context.data_changed) == ("qcow2", False)
    assert list(context.work_dir.iterdir()) == []


@pytest.mark.usefixtures("without_qemu_img")
def test_conversion_refuses_qcow2_data_file(make_context):
    data = disk_images.qcow2(MiB, external_data_file=True)
    context = make_context(data, disk_format="qcow2")

    with pytest.raises(ImportPluginError) as refused:
        ImageConversion().run(context)

    assert refused.value.message == "Image has disallowed configuration: data_file"
    assert list(context.work_dir.iterdir()) == []


@pytest.mark.usefixtures("without_qemu_img")
def test_conversion_refuses_vmdk_extent_pointing_at_host_file(make_context):
    data = disk_images.vmdk_monolithic_sparse(2048, extent_file="/etc/shadow")
    context = make_context(data, disk_format="vmdk")

    with pytest.raises(ImportPluginError) as refused:
        ImageConversion().run(context)

    assert refused.value.message.startswith("Image has disallowed configuration:")
    assert refused.value.permanent is True


@pytest.mark.usefixtures("without_qemu_img")
def test_conversion_refuses_data_not_in_declared_format(make_context):
    context = make_context(PATTERN, disk_format="qcow2")

    with pytest.raises(ImportPluginError) as refused:
        ImageConversion().run(context)

    assert refused.value.message == (
        "Image format mismatch: disk_format is qcow2 but the data is raw"
    )


@pytest.mark.usefixtures("without_qemu_img")
def test_conversion_without_qemu_img_fails_clearly(make_context):
    context = make_context(disk_images.qcow2(MiB), disk_format="qcow2")

    with pytest.raises(ImportPluginError) as refused:
        ImageConversion().run(context)

    assert refused.value.message == (
        "The image_conversion import plugin needs qemu-img, which is not installed on this "
        "worker (Debian/Ubuntu package qemu-utils)"
    )
    assert refused.value.permanent is True


def test_conversion_refuses_unconvertible_disk_format(make_context):
    context = make_context(PATTERN, disk_format="ami")

    with pytest.raises(ImportPluginError) as refused:
        ImageConversion().run(context)

    assert refused.value.message == "Cannot convert images of disk_format 'ami'"
