"""Text regions with PP-OCRv4's DBNet detector (rapidocr's ONNX export), as axis-aligned boxes.

DBNet predicts a per-pixel text probability; regions above a binary threshold become contours,
each scored by the mean probability inside its minimum-area rectangle and grown ("unclipped")
back to the full text extent, since the network is trained to mark a shrunk text kernel.
"""

from __future__ import annotations

import cv2
import numpy as np

from privinfer import assets
from privinfer.client.detect import register
from privinfer.client.detect.base import DetectorOptions, SensitiveDetector
from privinfer.errors import ConfigError
from privinfer.models.onnx_session import cpu_session
from privinfer.types import Box, Detection

_MULTIPLE = 32  # input sides must divide by the network's total downsampling
# PaddleOCR trains on BGR images normalised with ImageNet statistics in B, G, R order; written
# here for RGB input. (rapidocr 1.4.4 uses mean = std = 0.5 instead; on our test pages the maps differ little.)
_MEAN_RGB = np.array([0.406, 0.456, 0.485], dtype=np.float32)
_STD_RGB = np.array([0.225, 0.224, 0.229], dtype=np.float32)
_MIN_SIDE = 3  # DBNet's min_size: thinner rectangles are noise
_MAX_CANDIDATES = 1000


@register("text")
class TextDetector(SensitiveDetector):
    """PP-OCRv4 DBNet text detection; the options' threshold is DBNet's box threshold (0.5).

    max_side: the long side is shrunk to at most this (never enlarged), both sides then rounded
        to multiples of 32.
    binary_threshold: probability above which a pixel counts as text.
    unclip_ratio: how far each region is grown: by area * ratio / perimeter pixels on every side.
    threads: onnxruntime intra-op threads; None uses every core.
    """

    labels = ("text",)

    def __init__(
        self,
        options: DetectorOptions | None = None,
        max_side: int = 960,
        binary_threshold: float = 0.3,
        unclip_ratio: float = 1.5,
        threads: int | None = None,
    ) -> None:
        super().__init__(options)
        if max_side < _MULTIPLE:
            raise ConfigError(f"text: max_side must be at least {_MULTIPLE}, got {max_side}")
        self.max_side = max_side
        self.binary_threshold = binary_threshold
        self.unclip_ratio = unclip_ratio
        self._session = cpu_session(assets.require("ppocr-det"), threads)
        self._input_name = self._session.get_inputs()[0].name

    def detect_raw(self, rgb: np.ndarray) -> list[Detection]:
        height, width = rgb.shape[:2]
        net_width, net_height = network_size(width, height, self.max_side)
        resized = cv2.resize(rgb, (net_width, net_height)).astype(np.float32) / 255.0
        blob = ((resized - _MEAN_RGB) / _STD_RGB).transpose(2, 0, 1)[None].astype(np.float32)
        probability = self._session.run(None, {self._input_name: blob})[0][0, 0]
        sx, sy = width / net_width, height / net_height
        return [
            Detection(Box(box.x1 * sx, box.y1 * sy, box.x2 * sx, box.y2 * sy), "text", score)
            for box, score in text_boxes(probability, self.binary_threshold, self.unclip_ratio)
        ]


def network_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(width, height) for the network: long side at most max_side, each a multiple of 32, at least 32."""
    ratio = min(1.0, max_side / max(width, height))
    # Half rounds up (Python's round() would send 22.5 to 22 but 23.5 to 24).
    return tuple(max(_MULTIPLE, int(side * ratio / _MULTIPLE + 0.5) * _MULTIPLE) for side in (width, height))


def text_boxes(probability: np.ndarray, binary_threshold: float, unclip_ratio: float) -> list[tuple[Box, float]]:
    """DBNet post-processing on an (h, w) probability map; boxes in map pixels with their scores.

    Each connected text region is scored by the mean probability inside its contour (DBNet's
    "slow" score: the "fast" one averages over the minimum-area rectangle, which for a curved line
    on a bent page is half background and scores ~0.55). Its minimum-area rectangle is then
    unclipped by d = area * unclip_ratio / perimeter; the axis-aligned bounds of a rectangle offset
    by d with round joins (DBNet's pyclipper step) are its own bounds grown by d, so no polygon
    clipping is needed.
    """
    height, width = probability.shape
    bitmap = (probability > binary_threshold).astype(np.uint8)
    contours, _ = cv2.findContours(bitmap, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    found = []
    for contour in contours[:_MAX_CANDIDATES]:
        rectangle = cv2.minAreaRect(contour)
        (rect_w, rect_h) = rectangle[1]
        if min(rect_w, rect_h) < _MIN_SIDE:
            continue
        score = _mean_inside(probability, contour.reshape(-1, 2))
        corners = cv2.boxPoints(rectangle)
        distance = rect_w * rect_h * unclip_ratio / (2 * (rect_w + rect_h))
        if min(rect_w, rect_h) + 2 * distance < _MIN_SIDE + 2:
            continue
        x1, y1 = corners.min(axis=0) - distance
        x2, y2 = corners.max(axis=0) + distance
        found.append((Box(*(float(v) for v in (max(x1, 0), max(y1, 0), min(x2, width), min(y2, height)))), score))
    return found


def _mean_inside(probability: np.ndarray, polygon: np.ndarray) -> float:
    """Mean probability inside an integer (N, 2) polygon, computed on its bounding window only."""
    x1, y1 = polygon.min(axis=0)
    x2, y2 = polygon.max(axis=0)
    mask = np.zeros((y2 - y1 + 1, x2 - x1 + 1), dtype=np.uint8)
    cv2.fillPoly(mask, [(polygon - [x1, y1]).astype(np.int32)], 1)
    return float(cv2.mean(probability[y1 : y2 + 1, x1 : x2 + 1], mask)[0])
