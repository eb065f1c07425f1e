"""At what resolution sensitive detection runs: chosen from what leaves the client, not from the input.

A server sees a face only at the size it has in the *sent* frame, whose long side is the work size
(``--work-size``, 416 by default). A face smaller than ``--min-face`` pixels there cannot be
recognised, so the detector only has to find the faces that are at least that large once sent. It
therefore runs on the frame shrunk to ``DETECTOR_SMALLEST_FACE / min_face`` times the work size
(long side): there, a face of ``min_face`` sent pixels is ``DETECTOR_SMALLEST_FACE`` pixels, the
smallest the detector finds as it finds them at full resolution. Its cost then depends on the work
size, not on the input's resolution (a 4K frame costs what a 640x480 one does, beyond the shrink).

Why 8 px: human identification of spatially quantised faces is near ceiling at 15-18 pixels across
the face and falls towards chance at about 6 (T. Bachmann, "Identification of spatially quantised
tachistoscopic images of faces: How many pixels does it take to carry identity?", European Journal
of Cognitive Psychology 3(1), 87-103, 1991; N. P. Costen, D. M. Parker, I. Craw, "Spatial content
and spatial quantisation effects in face recognition", Perception 23(2), 129-146, 1994). Machine
recognition of "very low resolution" faces is studied from 16x16 down to 8x8 pixels and fails
below (W. W. W. Zou, P. C. Yuen, "Very low resolution face recognition problem", IEEE Trans.
Image Processing 21(1), 327-340, 2012). 8 px is thus a floor, not a margin: raise ``--min-face``
only knowingly, lower it to protect more at a higher detection cost.

With ``--work-size 0`` (frames sent at native resolution) detection stays native.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from privinfer.types import Box

MIN_FACE_PX = 8.0  # a face below this many pixels in the sent frame cannot be recognised (above)
# The smallest face (long side, px at the detector's input) CenterFace at its default threshold
# finds as it does at full resolution, measured with scripts/detect_resolution.py (README, Status):
# a face of 8 sent px must be 16 px where it is detected, so detection runs at 2x the work size.
DETECTOR_SMALLEST_FACE = 16.0
SIZE_BINS = (8.0, 16.0, 32.0)  # sent-frame face sizes the recall tables are binned by


def detection_factor(min_face: float, smallest_found: float = DETECTOR_SMALLEST_FACE) -> float:
    """How many times the work size (long side) detection runs at so that a face of ``min_face``
    sent pixels is ``smallest_found`` pixels where it is detected."""
    return smallest_found / min_face


def detection_long_side(
    width: int, height: int, work_size: int | None, min_face: float = MIN_FACE_PX, floor: int = 64
) -> int | None:
    """The long side a ``width`` x ``height`` frame is detected at, or None for its native size:
    ``detection_factor(min_face)`` times the work size, never below ``floor`` (no detector finds
    anything useful on a smaller picture); native when that is not smaller than the frame, or when
    frames are sent at native resolution (``work_size`` None)."""
    if work_size is None:
        return None
    side = max(floor, math.ceil(work_size * detection_factor(min_face)))
    return None if side >= max(width, height) else side


def sent_scale(width: int, height: int, work_size: int | None) -> float:
    """The factor frame pixels are multiplied by in the sent frame (1: sent at native size)."""
    long_side = max(width, height)
    return 1.0 if work_size is None or long_side <= work_size else work_size / long_side


def face_size(box: Box) -> float:
    """A face's size, as the bins count it: its box's long side (the larger bin when in doubt)."""
    return max(box.width, box.height)


def size_bin(pixels: float, edges: Sequence[float] = SIZE_BINS) -> str:
    """The label of the bin a sent-frame size falls in: '<8', '8-16', '16-32', '>=32' for the default edges."""
    for index, edge in enumerate(edges):
        if pixels < edge:
            return f"<{edge:g}" if index == 0 else f"{edges[index - 1]:g}-{edge:g}"
    return f">={edges[-1]:g}"


def bin_labels(edges: Sequence[float] = SIZE_BINS) -> list[str]:
    """Every bin's label, smallest first."""
    return [f"<{edges[0]:g}"] + [f"{a:g}-{b:g}" for a, b in zip(edges, edges[1:], strict=False)] + [f">={edges[-1]:g}"]


def covered_share(face: Box, box: Box) -> float:
    """The share of ``face``'s area that lies inside ``box`` (a face is treated as sensitive when
    most of it is inside one sensitive box)."""
    width = min(face.x2, box.x2) - max(face.x1, box.x1)
    height = min(face.y2, box.y2) - max(face.y1, box.y1)
    return width * height / face.area if width > 0 and height > 0 and face.area > 0 else 0.0
