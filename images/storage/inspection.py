"""Format inspection of uploaded data with oslo.utils' format inspector (internals §11.1).

The inspector reads the same chunks as the writer; the verdict is applied after the stream
ended, before the image may become active. Unlike Glance, which inspects only
``container_format: bare``, every upload, staging and import is inspected: the safety checks
(backing files, external data files, VMDK extents) apply whatever the container format, the
match with ``disk_format`` only to bare images (docs/security.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from oslo_utils.imageutils import format_inspector

from imageservice.errors import GlanceError

INSPECTABLE_FORMATS = frozenset(format_inspector.ALL_FORMATS) - {"raw"}
# What data declared raw may be under REQUIRE_RAW_FORMAT_MATCH: layouts whose bytes are the disk
# as a hypervisor reading raw sees it (an MBR or GPT partition table, an ISO 9660 filesystem).
RAW_READABLE_FORMATS = frozenset({"raw", "gpt", "iso"})
SAFETY_FAILED = "Image failed safety checks"


@dataclass(frozen=True)
class Verdict:
    virtual_size: int | None


@dataclass(frozen=True)
class Detection:
    """What the inspector saw, independent of the declared ``disk_format``.

    Kept with staged data, so an import can judge it later without reading the bytes again.
    """

    name: str = ""  # empty when several formats matched
    virtual_size: int | None = None
    ambiguity: str = ""  # "Multiple formats detected: …"
    safety_problem: str = ""  # "Image failed safety checks: …"


def format_rejection(detail: str) -> GlanceError:
    # Glance answers 415 here (glance-import-internals §9.3, verified against upstream).
    return GlanceError(415, detail=detail)


def detect(wrapper: format_inspector.InspectWrapper) -> Detection:
    matches = wrapper.formats or []
    names = sorted(str(match) for match in matches)
    if names == ["gpt", "iso"]:
        # Bootable ISOs carry a GPT: that pair is an ISO, not header smuggling.
        matches = [match for match in matches if str(match) == "iso"]
    elif len(matches) > 1:
        # Header smuggling can hide a dangerous header behind a harmless one: every match's
        # safety checks run, so a refusal does not depend on REQUIRE_IMAGE_FORMAT_MATCH.
        problems = [problem for problem in map(_safety_problem, matches) if problem]
        return Detection(
            ambiguity=f"Multiple formats detected: {', '.join(names)}",
            safety_problem=problems[0] if problems else "",
        )
    detected = matches[0]
    return Detection(
        name=str(detected),
        virtual_size=detected.virtual_size,
        safety_problem=_safety_problem(detected),
    )


def _safety_problem(detected: format_inspector.FileInspector) -> str:
    try:
        detected.safety_check()
    except format_inspector.SafetyCheckFailed as failure:
        return f"{SAFETY_FAILED}: {', '.join(sorted(failure.failures))}"
    except format_inspector.ImageFormatError as error:
        return f"{SAFETY_FAILED}: {error}"
    return ""


def verdict(
    detection: Detection,
    disk_format: str,
    container_format: str,
    size: int,
    *,
    require_match: bool,
    require_raw_match: bool = False,
) -> Verdict:
    """Accept or refuse the data for ``disk_format`` in ``container_format``; raise a 415
    ``GlanceError`` to refuse.

    ``require_match`` is Glance's ``[image_format] require_image_format_match``;
    ``require_raw_match`` also refuses a richer format (qcow2, vmdk, …) declared ``raw``, which
    Glance accepts as raw bytes.
    """
    if detection.safety_problem:
        raise format_rejection(detection.safety_problem)
    if detection.ambiguity:
        if require_match:
            raise format_rejection(detection.ambiguity)
        return Verdict(virtual_size=None)
    if container_format != "bare":
        # The data is a container (an OVA's tar, a compressed stream) holding the disk: what the
        # inspector recognised is the wrapper, so only the safety checks above can be judged.
        return Verdict(virtual_size=None)
    name = detection.name
    if name == disk_format:
        return Verdict(virtual_size=detection.virtual_size)
    if name == "raw" and disk_format not in INSPECTABLE_FORMATS:
        return Verdict(virtual_size=None)
    if disk_format == "raw":
        if require_raw_match and name not in RAW_READABLE_FORMATS:
            raise format_rejection(_mismatch(disk_format, name))
        # A richer format declared as raw is served as raw bytes; its safety checks ran above.
        return Verdict(virtual_size=size)
    if require_match:
        raise format_rejection(_mismatch(disk_format, name))
    return Verdict(virtual_size=None)


def _mismatch(disk_format: str, detected: str) -> str:
    return f"Image disk_format {disk_format} does not match stream data {detected}"
