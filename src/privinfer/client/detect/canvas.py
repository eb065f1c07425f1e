"""Packing regions of a frame into one canvas, so that one detector pass sees all of them.

Pure geometry plus one pixel copy: each region is scaled by its own factor, placed on shelves
(rows filled left to right, the tallest regions first) with ``gap`` black pixels between any two,
and a box the detector finds on the canvas is mapped back to frame pixels through the region that
holds its centre. The gap keeps a region's pixels from being read as part of its neighbour's face.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from privinfer.types import Box, Detection


@dataclass(frozen=True)
class Placement:
    """One frame region on the canvas: ``source`` (integer frame pixels) scaled by ``scale`` and
    drawn with its top-left corner at (``x``, ``y``), ``width`` x ``height`` canvas pixels."""

    source: Box
    scale: float
    x: int
    y: int
    width: int
    height: int

    @property
    def target(self) -> Box:
        return Box(self.x, self.y, self.x + self.width, self.y + self.height)


@dataclass(frozen=True)
class Canvas:
    width: int
    height: int
    placements: tuple[Placement, ...]


def scaled_size(source: Box, scale: float) -> tuple[int, int]:
    """A region's (width, height) on the canvas: at least one pixel a side."""
    return max(1, round(source.width * scale)), max(1, round(source.height * scale))


def pack(regions: Sequence[tuple[Box, float]], gap: int = 8, multiple: int = 32, align: int = 1) -> Canvas:
    """Place ``regions`` ((frame box with integer edges, scale) each) on shelves.

    The canvas is about square (its width the square root of the regions' area with their gaps,
    and never narrower than the widest region), and both sides are rounded up to ``multiple`` so
    that a detector that wants such sides sees the canvas unresized. Placements keep the order of
    ``regions``. ``align``: every placement starts at a multiple of it (with regions whose frame
    edges are multiples of it too, a network of that stride sees each at its frame phase).

    Raises:
        ValueError: ``gap`` is negative or ``multiple`` below one.
    """
    if gap < 0 or multiple < 1:
        raise ValueError(f"pack: gap must be >= 0 and multiple >= 1, got gap={gap}, multiple={multiple}")
    if not regions:
        return Canvas(0, 0, ())
    sizes = [scaled_size(box, scale) for box, scale in regions]
    area = sum((w + gap) * (h + gap) for w, h in sizes)
    shelf_width = max(max(w for w, _ in sizes), math.ceil(math.sqrt(area)))
    order = sorted(range(len(sizes)), key=lambda i: -sizes[i][1])
    positions: dict[int, tuple[int, int]] = {}
    x = y = shelf_height = 0
    for i in order:
        w, h = sizes[i]
        if x > 0 and x + w > shelf_width:  # the shelf is full: start the next one below it
            x, y, shelf_height = 0, _round_up(y + shelf_height + gap, align), 0
        positions[i] = (x, y)
        x = _round_up(x + w + gap, align)
        shelf_height = max(shelf_height, h)
    width = max(positions[i][0] + sizes[i][0] for i in order)
    height = y + shelf_height
    placements = tuple(Placement(box, scale, *positions[i], *sizes[i]) for i, (box, scale) in enumerate(regions))
    return Canvas(_round_up(width, multiple), _round_up(height, multiple), placements)


def render(rgb: np.ndarray, canvas: Canvas) -> np.ndarray:
    """The canvas's pixels: each placement's frame region resized into it, black elsewhere."""
    out = np.zeros((canvas.height, canvas.width, 3), dtype=np.uint8)
    for p in canvas.placements:
        x1, y1, x2, y2 = (int(v) for v in p.source.as_list())
        region = rgb[y1:y2, x1:x2]
        if region.size == 0:
            continue
        interpolation = cv2.INTER_AREA if p.scale < 1 else cv2.INTER_LINEAR
        resized = cv2.resize(region, (p.width, p.height), interpolation=interpolation)
        out[p.y : p.y + p.height, p.x : p.x + p.width] = resized
    return out


def to_frame(detections: Sequence[Detection], canvas: Canvas) -> list[Detection]:
    """Canvas detections in frame pixels: each through the placement that holds its centre,
    clipped to that placement first (a box never reaches into a neighbour's region). A box whose
    centre lies in a gap or the padding is dropped: no frame pixel is under it."""
    out = []
    for detection in detections:
        box = detection.box
        cx, cy = (box.x1 + box.x2) / 2, (box.y1 + box.y2) / 2
        for p in canvas.placements:
            if p.x <= cx < p.x + p.width and p.y <= cy < p.y + p.height:
                out.append(Detection(_mapped(box, p), detection.label, detection.score))
                break
    return out


def _mapped(box: Box, p: Placement) -> Box:
    # The placement's actual factors per axis: rounding its size moves them off `scale` slightly.
    sx, sy = p.width / p.source.width, p.height / p.source.height
    x1, x2 = min(max(box.x1, p.x), p.x + p.width), min(max(box.x2, p.x), p.x + p.width)
    y1, y2 = min(max(box.y1, p.y), p.y + p.height), min(max(box.y2, p.y), p.y + p.height)
    return Box(
        p.source.x1 + (x1 - p.x) / sx, p.source.y1 + (y1 - p.y) / sy,
        p.source.x1 + (x2 - p.x) / sx, p.source.y1 + (y2 - p.y) / sy,
    )  # fmt: skip


def _round_up(side: int, multiple: int) -> int:
    return int(math.ceil(side / multiple) * multiple)
