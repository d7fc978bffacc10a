"""image_decompression: gzip, bzip2, xz and single-file zip, detected by magic bytes, capped."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zipfile

import pytest

from importplugins.base import ImportPluginError
from importplugins.decompression import ImageDecompression

IMAGE = bytes(range(256)) * 4096  # 1 MiB that compresses well


def zipped(*members: tuple[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


COMPRESSORS = {
    "gzip": gzip.compress,
    "bzip2": bz2.compress,
    "xz": lzma.compress,
    "zip": lambda data: zipped(("../../etc/disk.img", data)),
}


@pytest.mark.parametrize("compression", sorted(COMPRESSORS))
def test_decompression_unpacks_into_work_dir(make_context, compression):
    context = make_context(COMPRESSORS[compression](IMAGE))
    staged = context.data_path

    ImageDecompression().run(context)

    assert context.data_path.read_bytes() == IMAGE
    assert context.data_path.parent == context.work_dir
    assert list(context.work_dir.iterdir()) == [context.data_path]
    assert context.data_changed is True
    assert (context.disk_format, context.container_format) == ("raw", "bare")
    assert staged.exists()  # the staged upload belongs to the import, not to the plugin


def test_decompression_leaves_uncompressed_data_alone(make_context):
    context = make_context(b"BZh? not bzip2, just raw bytes")
    staged = context.data_path

    ImageDecompression().run(context)

    assert (context.data_path, context.data_changed) == (staged, False)
    assert list(context.work_dir.iterdir()) == []


def test_decompression_skips_declared_compressed_container(make_context):
    data = gzip.compress(IMAGE)
    context = make_context(data, container_format="compressed")

    ImageDecompression().run(context)

    assert context.data_path.read_bytes() == data and context.data_changed is False


def test_decompression_skips_copy_image(make_context):
    context = make_context(gzip.compress(IMAGE), method="copy-image")

    ImageDecompression().run(context)

    assert context.data_changed is False and list(context.work_dir.iterdir()) == []


def test_decompression_refuses_zip_with_two_members(make_context):
    context = make_context(zipped(("a.img", IMAGE), ("b.img", IMAGE)))

    with pytest.raises(ImportPluginError) as refused:
        ImageDecompression().run(context)

    assert (refused.value.message, refused.value.permanent) == (
        "Archive contains more than one file.",
        True,
    )
    assert list(context.work_dir.iterdir()) == []


def test_decompression_stops_at_image_size_cap(make_context):
    bomb = gzip.compress(bytes(10 * 1024 * 1024))  # 10 MiB of zeros, about 10 KiB compressed
    context = make_context(bomb, settings={"image_size_cap": 1024 * 1024})

    with pytest.raises(ImportPluginError) as refused:
        ImageDecompression().run(context)

    assert refused.value.message == (
        "Decompressed image data exceeds the image size cap of 1048576 bytes"
    )
    assert refused.value.permanent is True
    assert list(context.work_dir.iterdir()) == []
    assert context.data_path.read_bytes() == bomb


def test_decompression_accepts_output_of_exactly_the_cap(make_context):
    context = make_context(gzip.compress(IMAGE), settings={"image_size_cap": len(IMAGE)})

    ImageDecompression().run(context)

    assert context.data_path.read_bytes() == IMAGE


def test_decompression_refuses_corrupt_stream(make_context):
    context = make_context(gzip.compress(IMAGE)[:1000])

    with pytest.raises(ImportPluginError) as refused:
        ImageDecompression().run(context)

    assert refused.value.message.startswith(
        "Image data looks gzip-compressed but cannot be decompressed:"
    )
    assert refused.value.permanent is True
    assert list(context.work_dir.iterdir()) == []


def test_decompression_removes_previous_plugin_output(make_context):
    context = make_context()
    earlier_output = context.work_dir / "from-an-earlier-plugin"
    earlier_output.write_bytes(gzip.compress(IMAGE))
    context.replace_data(earlier_output)

    ImageDecompression().run(context)

    assert not earlier_output.exists()
    assert list(context.work_dir.iterdir()) == [context.data_path]
