"""Fitting any image into a square model input without distortion, and undoing it for boxes."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Letterbox:
    """How an image was placed in the model input: scaled by ``scale``, then offset by the pads."""

    scale: float
    pad_x: int
    pad_y: int
    input_size: int

    def to_image(self, boxes: np.ndarray) -> np.ndarray:
        """Map (N,4) x1,y1,x2,y2 boxes from model-input pixels back to original-image pixels."""
        out = boxes.astype(np.float32).copy()
        out[:, [0, 2]] = (out[:, [0, 2]] - self.pad_x) / self.scale
        out[:, [1, 3]] = (out[:, [1, 3]] - self.pad_y) / self.scale
        return out


def letterbox(rgb: np.ndarray, input_size: int, fill: int = 0) -> tuple[np.ndarray, Letterbox]:
    """Resize keeping aspect so the long side is ``input_size``, centre it on a square canvas.

    Returns the square uint8 canvas and the transform that maps boxes back.
    """
    height, width = rgb.shape[:2]
    scale = input_size / max(height, width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(rgb, (new_w, new_h), interpolation=interpolation) if scale != 1 else rgb
    canvas = np.full((input_size, input_size, 3), fill, dtype=np.uint8)
    pad_x, pad_y = (input_size - new_w) // 2, (input_size - new_h) // 2
    canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized
    return canvas, Letterbox(scale, pad_x, pad_y, input_size)
