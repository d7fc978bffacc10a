"""``image_conversion``: convert imported data to ``IMAGE_CONVERSION_OUTPUT_FORMAT`` (§3.3).

Runs only when the image's ``disk_format`` differs from the output format. Before ``qemu-img``
touches the data, the format inspector (internals §11.1) must recognise it as the declared
``disk_format`` and its safety checks must pass: a qcow2 with a backing file or an external data
file, or a VMDK with flat extents, would make ``qemu-img`` read host files into the image
(LP #2059809). ``qemu-img info`` then cross-checks the same under CPU and memory limits
(LP #1449062), ``qemu-img convert`` writes the new file under a timeout, and the result must
inspect as the output format, which guards against one format hidden inside another.

Differences from Glance, on purpose: ``qemu-img convert`` runs under a timeout; an unknown or
unsupported ``disk_format`` fails with a message naming it; ``iso`` passes through unchanged
whatever it is declared as. Like Glance, the converted image gets ``container_format`` ``bare``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from oslo_utils.imageutils import format_inspector

from importplugins.base import ImportContext, ImportPlugin, ImportPluginError

OUTPUT_FORMATS = frozenset({"raw", "qcow2", "vmdk"})
# Glance disk formats qemu-img reads, with qemu-img's driver name where it differs.
QEMU_DRIVERS = {
    "raw": "raw",
    "qcow2": "qcow2",
    "vmdk": "vmdk",
    "vhd": "vpc",
    "vhdx": "vhdx",
    "vdi": "vdi",
}
PASS_THROUGH_FORMATS = frozenset({"iso"})
# qemu-img is optional for the service as a whole: only this plugin runs it.
QEMU_IMG_PACKAGE = "Debian/Ubuntu package qemu-utils"
SKIPPED_METHODS = frozenset({"copy-image"})

DEFAULT_CONVERT_TIMEOUT = 3600
INFO_TIMEOUT = 30
# Glance's limits for `qemu-img info` on untrusted headers: 2 s of CPU, 1 GiB of address space.
INFO_CPU_SECONDS = 2
INFO_ADDRESS_SPACE = 1024**3
INSPECT_CHUNK_SIZE = 64 * 1024

# Applies the limits in a fresh interpreter that then becomes qemu-img: unlike preexec_fn, this
# is safe when the worker runs threads.
LIMITED_EXEC = (
    "import os, resource, sys;"
    "cpu, memory = int(sys.argv[1]), int(sys.argv[2]);"
    "resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu));"
    "resource.setrlimit(resource.RLIMIT_AS, (memory, memory));"
    "os.execv(sys.argv[3], sys.argv[3:])"
)


class ImageConversion(ImportPlugin):
    name = "image_conversion"
    description = (
        "Converts image data to IMAGE_CONVERSION_OUTPUT_FORMAT with qemu-img after format "
        "inspection (refuses backing files and external data files)."
    )

    def run(self, context: ImportContext) -> None:
        output_format = str(context.settings["image_conversion_output_format"])
        source_format = context.disk_format
        if context.method in SKIPPED_METHODS or source_format == output_format:
            return
        if output_format not in OUTPUT_FORMATS:
            raise ImportPluginError(
                f"Unsupported conversion output format {output_format!r}; "
                f"use one of {', '.join(sorted(OUTPUT_FORMATS))}",
                permanent=True,
            )
        if source_format in PASS_THROUGH_FORMATS:
            return
        if source_format not in QEMU_DRIVERS:
            raise ImportPluginError(
                f"Cannot convert images of disk_format {source_format!r}", permanent=True
            )

        detected = inspected_format(context.data_path)
        if detected != source_format:
            raise ImportPluginError(
                f"Image format mismatch: disk_format is {source_format} but the data is {detected}",
                permanent=True,
            )
        qemu_img = qemu_img_path()
        info = qemu_img_info(qemu_img, QEMU_DRIVERS[source_format], context.data_path)
        converted = convert(qemu_img, context, source_format, output_format)
        if inspected_format(converted, cleanup=True) != output_format:
            raise ImportPluginError("Converted image in unexpected format", permanent=True)

        context.replace_data(converted)
        context.disk_format = output_format
        context.container_format = "bare"
        context.virtual_size = info.get("virtual-size")


def inspected_format(path: Path, *, cleanup: bool = False) -> str:
    """The format name the inspector sees in ``path`` after its safety checks passed.

    A GPT disk counts as ``raw`` (as in Glance) and an ISO that also carries a GPT as ``iso``.
    Refusals raise a permanent :class:`ImportPluginError`; with ``cleanup`` the file is deleted
    first.
    """
    try:
        return _inspect(path)
    except ImportPluginError:
        if cleanup:
            path.unlink(missing_ok=True)
        raise


def _inspect(path: Path) -> str:
    with path.open("rb") as data:
        wrapper = format_inspector.InspectWrapper(data)
        try:
            while wrapper.formats is None and wrapper.read(INSPECT_CHUNK_SIZE):
                pass
        finally:
            wrapper.close()
        matches = {str(match): match for match in wrapper.formats or []}
    if set(matches) == {"gpt", "iso"}:
        del matches["gpt"]
    if len(matches) != 1:
        raise ImportPluginError(
            f"Image format detection failed: several formats match ({', '.join(sorted(matches))})",
            permanent=True,
        )
    name, inspector = matches.popitem()
    if name == "gpt":
        return "raw"
    try:
        inspector.safety_check()
    except format_inspector.SafetyCheckFailed as failure:
        raise ImportPluginError(
            f"Image has disallowed configuration: {', '.join(sorted(failure.failures))}",
            permanent=True,
        ) from failure
    except format_inspector.ImageFormatError as error:
        raise ImportPluginError(
            f"Image format detection failed: {error}", permanent=True
        ) from error
    return name


def qemu_img_path() -> str:
    """Where ``qemu-img`` is on PATH; a permanent :class:`ImportPluginError` naming it if not."""
    path = shutil.which("qemu-img")
    if path is None:
        raise ImportPluginError(
            "The image_conversion import plugin needs qemu-img, which is not installed on this "
            f"worker ({QEMU_IMG_PACKAGE})",
            permanent=True,
        )
    return path


def qemu_img_info(qemu_img: str, driver: str, path: Path) -> dict:
    """``qemu-img info`` of the source under resource limits; refuse what points outside it."""
    command = [
        sys.executable,
        "-c",
        LIMITED_EXEC,
        str(INFO_CPU_SECONDS),
        str(INFO_ADDRESS_SPACE),
        qemu_img,
        "info",
        "-f",
        driver,
        "--output=json",
        str(path),
    ]
    result = _run(command, INFO_TIMEOUT, "qemu-img info")
    try:
        info = json.loads(result.stdout)
    except ValueError as error:
        raise ImportPluginError(f"qemu-img info gave no usable answer: {error}") from error
    if info.get("format") != driver:
        raise ImportPluginError(
            f"Image format mismatch: qemu-img reads it as {info.get('format')}", permanent=True
        )
    if info.get("backing-filename"):
        raise ImportPluginError("Images with backing files are not allowed", permanent=True)
    if info.get("format-specific", {}).get("data", {}).get("data-file"):
        raise ImportPluginError("Images with external data files are not allowed", permanent=True)
    return info


def convert(qemu_img: str, context: ImportContext, source_format: str, output_format: str) -> Path:
    descriptor, name = tempfile.mkstemp(
        dir=context.work_dir, prefix=f"{context.image_id}-", suffix=f".{output_format}"
    )
    os.close(descriptor)
    destination = Path(name)
    command = [
        qemu_img,
        "convert",
        "-f",
        QEMU_DRIVERS[source_format],
        "-O",
        QEMU_DRIVERS[output_format],
        str(context.data_path),
        str(destination),
    ]
    timeout = int(context.settings.get("image_conversion_timeout", DEFAULT_CONVERT_TIMEOUT))
    try:
        _run(command, timeout, "qemu-img convert")
    except ImportPluginError:
        destination.unlink(missing_ok=True)
        raise
    return destination


def _run(command: list[str], timeout: int, label: str) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise ImportPluginError(f"{label} did not finish within {timeout} s") from error
    except OSError as error:
        raise ImportPluginError(f"{label} could not start: {error}") from error
    if result.returncode != 0:
        detail = result.stderr.strip() or f"exit status {result.returncode}"
        raise ImportPluginError(f"{label} failed: {detail}", permanent=True)
    return result
