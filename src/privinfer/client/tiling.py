"""Cutting a frame into overlapping tiles and sorting them by the RoI x sensitivity policy.

Pure geometry on numbers, as SAHI's slicing does, so it can be property-tested:

| | sensitive | non-sensitive |
|---|---|---|
| inside RoI | privatize | send raw |
| outside RoI | discard | discard |

Pixel convention: a tile covers integer pixels [x1, x2) x [y1, y2). A float box covers every pixel
it touches, i.e. [floor(x1), ceil(x2)); that conservative rounding is what makes "a raw tile
holds no pixel of a sensitive box" hold exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from privinfer.errors import ConfigError
from privinfer.types import Box, Chunk, Treatment

MIN_TILE = 32  # the task model's coarsest stride: a smaller tile gives it nothing to see
MAX_OVERLAP = 0.9


def tile_starts(length: int, tile: int, overlap: float) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``[0, length)`` with at least ``overlap`` share.

    The last tile is aligned to the end, so every pixel is covered and no tile leaves the frame
    (a frame shorter than the tile gets one tile of the frame's length).
    """
    if tile >= length:
        return [0]
    step = max(1, int(tile * (1 - overlap)))
    count = math.ceil((length - tile) / step) + 1
    if count == 1:
        return [0]
    # Spread the starts evenly so the overlap is shared instead of piling up on the last tile.
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def tile_grid(width: int, height: int, tile: int, overlap: float) -> list[Box]:
    """Tile boxes (integer corners) covering a width x height frame, row-major.

    Raises:
        ConfigError: tile size < 32 or overlap outside [0, 0.9].
    """
    if tile < MIN_TILE:
        raise ConfigError(f"tile size {tile} is too small; use at least {MIN_TILE} pixels")
    if not 0.0 <= overlap <= MAX_OVERLAP:
        raise ConfigError(f"tile overlap {overlap} must be between 0 and {MAX_OVERLAP}")
    if width <= 0 or height <= 0:
        raise ConfigError(f"cannot tile an empty frame of {width}x{height}")
    tile_w, tile_h = min(tile, width), min(tile, height)
    return [
        Box(x, y, x + tile_w, y + tile_h)
        for y in tile_starts(height, tile, overlap)
        for x in tile_starts(width, tile, overlap)
    ]


def pixel_extent(box: Box) -> tuple[int, int, int, int]:
    """The integer pixel range [x1, x2) x [y1, y2) a float box touches."""
    return math.floor(box.x1), math.floor(box.y1), math.ceil(box.x2), math.ceil(box.y2)


def touches(tile: Box, box: Box) -> bool:
    """True when the tile holds at least one pixel that the (float) box touches."""
    bx1, by1, bx2, by2 = pixel_extent(box)
    if bx2 <= bx1 or by2 <= by1:
        return False
    return bx1 < tile.x2 and bx2 > tile.x1 and by1 < tile.y2 and by2 > tile.y1


def classify_tiles(
    tiles: Sequence[Box], roi: Sequence[Box], sensitive: Sequence[Box], cores: Sequence[Box] | None = None
) -> list[Chunk]:
    """Apply the policy to each tile (chunk): discarded outside the RoI, privatized if it touches a
    sensitive box. ``cores``: what each chunk answers for in the merge (default: its box)."""
    out = []
    for index, box in enumerate(tiles):
        if not any(touches(box, r) for r in roi):
            treatment = Treatment.DISCARDED
        elif any(touches(box, s) for s in sensitive):
            treatment = Treatment.PRIVATIZED
        else:
            treatment = Treatment.RAW
        out.append(Chunk(index, box, treatment, None if cores is None else cores[index]))
    return out


def scale_box(box: Box, factor: float) -> Box:
    return Box(box.x1 * factor, box.y1 * factor, box.x2 * factor, box.y2 * factor)


def grow(box: Box, pixels: float) -> Box:
    return Box(box.x1 - pixels, box.y1 - pixels, box.x2 + pixels, box.y2 + pixels)
