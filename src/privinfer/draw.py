"""Drawing results on images for people to look at (never used on what is sent to servers)."""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from privinfer.types import Box, Detection

TASK_COLOUR = (0, 200, 255)
SENSITIVE_COLOUR = (255, 0, 255)


def draw_detections(
    rgb: np.ndarray, detections: Iterable[Detection], colour=TASK_COLOUR, thickness: int = 2
) -> np.ndarray:
    """A copy of the image with each detection's box and 'label score' drawn."""
    canvas = rgb.copy()
    for detection in detections:
        x1, y1, x2, y2 = (int(round(v)) for v in detection.box.as_list())
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, thickness)
        text = f"{detection.label} {detection.score:.2f}"
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        top = max(0, y1 - th - 4)
        cv2.rectangle(canvas, (x1, top), (x1 + tw + 4, top + th + 4), colour, -1)
        cv2.putText(canvas, text, (x1 + 2, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return canvas


def shade_boxes(rgb: np.ndarray, boxes: Iterable[tuple[Box, tuple[int, int, int]]], alpha: float = 0.25) -> np.ndarray:
    """A copy with each box filled by a translucent colour and outlined (tile treatment overlay)."""
    overlay = rgb.copy()
    outlined = rgb.copy()
    for box, colour in boxes:
        x1, y1, x2, y2 = (int(round(v)) for v in box.as_list())
        cv2.rectangle(overlay, (x1, y1), (x2 - 1, y2 - 1), colour, -1)
        cv2.rectangle(outlined, (x1, y1), (x2 - 1, y2 - 1), colour, 1)
    blended = cv2.addWeighted(overlay, alpha, rgb, 1 - alpha, 0)
    edges = np.any(outlined != rgb, axis=2)
    blended[edges] = outlined[edges]
    return blended
