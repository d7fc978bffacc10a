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


def format_rejection(detail: str) -> GlanceError:
    # Glance answers 415 here (glance-import-internals §9.3, verified against upstream).
    return GlanceError(415, detail=detail)


def detected_format(wrapper: format_inspector.InspectWrapper) -> format_inspector.FileInspector:
    matches = wrapper.formats or []
    names = sorted(str(match) for match in matches)
    if names == ["gpt", "iso"]:
        # Bootable ISOs carry a GPT: that pair is an ISO, not header smuggling.
        return next(match for match in matches if str(match) == "iso")
    if len(matches) > 1:
        raise format_rejection(f"Multiple formats detected: {', '.join(names)}")
    return matches[0]


def verdict(
    wrapper: format_inspector.InspectWrapper, disk_format: str, size: int, require_match: bool
) -> Verdict:
    """Accept or refuse the data for ``disk_format``; raise a 415 ``GlanceError`` to refuse."""
    try:
        detected = detected_format(wrapper)
    except GlanceError:
        if require_match:
            raise
        return Verdict(virtual_size=None)
    _check_safety(detected)
    name = str(detected)
    if name == disk_format:
        return Verdict(virtual_size=detected.virtual_size)
    if name == "raw" and disk_format not in INSPECTABLE_FORMATS:
        return Verdict(virtual_size=None)
    if disk_format == "raw":
        # A richer format declared as raw is served as raw bytes; its safety checks ran above.
        return Verdict(virtual_size=size)
    if require_match:
        raise format_rejection(f"Image disk_format {disk_format} does not match stream data {name}")
    return Verdict(virtual_size=None)


def _check_safety(detected: format_inspector.FileInspector) -> None:
    try:
        detected.safety_check()
    except format_inspector.SafetyCheckFailed as failure:
        problems = ", ".join(sorted(failure.failures))
        raise format_rejection(f"Image failed safety checks: {problems}") from failure
    except format_inspector.ImageFormatError as error:
        raise format_rejection(f"Image failed safety checks: {error}") from error
