"""What a sensitive region's pixels become before its chunk leaves the client: a named *fill*.

``black`` zeroes the region. A black box also disturbs the model's features *around* it (the
receptive field sees a hard dark edge), so the person below a filled face is found less often.
``telea`` and ``ns`` (OpenCV's inpainting, Telea's fast marching and Navier-Stokes) instead paint
the region from its surroundings, so the edge and the colours flow on.

Every fill reads only pixels outside the regions: the regions are zeroed first and marked unknown,
so the result is a function of what is sent anyway, and changing a pixel inside a region changes
no byte on the wire (tests/test_fill.py); an inpainted pixel stays within the range of the colours
around its region. An inpainting is computed on a window around each region,
shrunk so that the region's long side is at most ``INPAINT_SIDE`` pixels (the cost grows with the
region's area; a smooth fill loses nothing at the lower resolution), and scaled back.

Add a fill: a function ``(pixels, regions) -> pixels`` registered with ``@register_fill("name")``.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from privinfer.errors import ConfigError

Region = tuple[int, int, int, int]  # x1, y1, x2, y2 pixel range (ends exclusive)
FillFunction = Callable[[np.ndarray, list[Region]], np.ndarray]

DEFAULT_FILL = "telea"
INPAINT_SIDE = 24  # a region is inpainted at most this many pixels on its long side
INPAINT_RADIUS = 3  # pixels of the (shrunk) surroundings each inpainted pixel is computed from
_WINDOW = 2  # window margin around a region, in multiples of the inpainting radius (shrunk pixels)

_FILLS: dict[str, FillFunction] = {}


def register_fill(name: str) -> Callable[[FillFunction], FillFunction]:
    def decorate(function: FillFunction) -> FillFunction:
        _FILLS[name] = function
        return function

    return decorate


def available_fills() -> list[str]:
    return sorted(_FILLS)


def check_fill(name: str) -> str:
    """Raises ConfigError naming the fills when ``name`` is not one."""
    if name not in _FILLS:
        raise ConfigError(f"unknown fill '{name}'; choose from: {', '.join(available_fills())}")
    return name


def fill_regions(pixels: np.ndarray, regions: list[Region], fill: str = DEFAULT_FILL) -> np.ndarray:
    """A copy of ``pixels`` (H, W, 3) uint8 with every region replaced by fill ``fill``.

    Raises ConfigError for an unknown fill."""
    return _FILLS[check_fill(fill)](pixels, regions)


@register_fill("black")
def black(pixels: np.ndarray, regions: list[Region]) -> np.ndarray:
    """Every region black: the fill that reads nothing at all."""
    out = pixels.copy()
    for x1, y1, x2, y2 in regions:
        out[y1:y2, x1:x2] = 0
    return out


def _inpainted(pixels: np.ndarray, regions: list[Region], method: int) -> np.ndarray:
    """Each region inpainted by OpenCV ``method`` from the pixels around it (none of any region)."""
    out = black(pixels, regions)  # nothing of a region is read from here on
    unknown = np.zeros(pixels.shape[:2], np.uint8)
    for x1, y1, x2, y2 in regions:
        unknown[y1:y2, x1:x2] = 255
    height, width = pixels.shape[:2]
    for x1, y1, x2, y2 in regions:
        if x2 <= x1 or y2 <= y1:
            continue
        scale = min(1.0, INPAINT_SIDE / max(x2 - x1, y2 - y1))
        margin = int(np.ceil(_WINDOW * INPAINT_RADIUS / scale))
        wx1, wy1, wx2, wy2 = max(0, x1 - margin), max(0, y1 - margin), min(width, x2 + margin), min(height, y2 + margin)
        window, mask = out[wy1:wy2, wx1:wx2], unknown[wy1:wy2, wx1:wx2]
        size = (max(1, round((wx2 - wx1) * scale)), max(1, round((wy2 - wy1) * scale)))
        if scale < 1:
            small = cv2.resize(window, size, interpolation=cv2.INTER_AREA)
            # A shrunk pixel that averaged any zeroed pixel is unknown too.
            small_mask = (cv2.resize(mask, size, interpolation=cv2.INTER_AREA) > 0).astype(np.uint8) * 255
            painted = cv2.inpaint(small, small_mask, INPAINT_RADIUS, method)
            painted = cv2.resize(painted, (wx2 - wx1, wy2 - wy1), interpolation=cv2.INTER_LINEAR)
        else:
            painted = cv2.inpaint(window, mask, INPAINT_RADIUS, method)
        # Only this region's pixels are written: its surroundings stay as they are sent. Telea
        # extrapolates gradients: the result is held within the colours around it.
        known = window[mask == 0]
        low, high = (known.min(axis=0), known.max(axis=0)) if len(known) else (0, 0)
        out[y1:y2, x1:x2] = np.clip(painted[y1 - wy1 : y2 - wy1, x1 - wx1 : x2 - wx1], low, high)
    return out


@register_fill("telea")
def telea(pixels: np.ndarray, regions: list[Region]) -> np.ndarray:
    """OpenCV's fast-marching inpainting (Telea 2004) of each region from its surroundings."""
    return _inpainted(pixels, regions, cv2.INPAINT_TELEA)


@register_fill("ns")
def navier_stokes(pixels: np.ndarray, regions: list[Region]) -> np.ndarray:
    """OpenCV's Navier-Stokes inpainting (Bertalmio 2001) of each region from its surroundings."""
    return _inpainted(pixels, regions, cv2.INPAINT_NS)
