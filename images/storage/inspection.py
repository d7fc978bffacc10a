"""Format inspection of uploaded data with oslo.utils' format inspector (internals §11.1).

The inspector reads the same chunks as the writer; the verdict is applied after the stream
ended, before the image may become active.
"""

from __future__ import annotations

from dataclasses import dataclass

from oslo_utils.imageutils import format_inspector

from imageservice.errors import GlanceError

INSPECTABLE_FORMATS = frozenset(format_inspector.ALL_FORMATS) - {"raw"}


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
        return Detection(ambiguity=f"Multiple formats detected: {', '.join(names)}")
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
        return f"Image failed safety checks: {', '.join(sorted(failure.failures))}"
    except format_inspector.ImageFormatError as error:
        return f"Image failed safety checks: {error}"
    return ""


def verdict(detection: Detection, disk_format: str, size: int, require_match: bool) -> Verdict:
    """Accept or refuse the data for ``disk_format``; raise a 415 ``GlanceError`` to refuse."""
    if detection.ambiguity:
        if require_match:
            raise format_rejection(detection.ambiguity)
        return Verdict(virtual_size=None)
    if detection.safety_problem:
        raise format_rejection(detection.safety_problem)
    name = detection.name
    if name == disk_format:
        return Verdict(virtual_size=detection.virtual_size)
    if name == "raw" and disk_format not in INSPECTABLE_FORMATS:
        return Verdict(virtual_size=None)
    if disk_format == "raw":
        # A richer format declared as raw is served as raw bytes; its safety checks ran above.
        return Verdict(virtual_size=size)
    if require_match:
        raise format_rejection(f"Image disk_format {disk_format} does not match stream data {name}")
    return Verdict(virtual_size=None)
