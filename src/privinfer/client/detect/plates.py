"""Number plates with OpenCV's Haar cascade for Russian plates.

A weak detector, kept because it needs no download: the cascade was trained on frontal, sharp,
Russian-format plates, so it misses plates seen at an angle, blurred by motion, small, or of other
countries' layouts, and it fires on plate-like textures (chrome trim, signs). Haar cascades give
no probability; the score here is derived from how many overlapping raw windows agreed
(OpenCV's "neighbours"), see `neighbour_score`.
"""

from __future__ import annotations

import cv2
import numpy as np

from privinfer.client.detect import register
from privinfer.client.detect.base import DetectorOptions, SensitiveDetector, boxes_from_xyxy
from privinfer.errors import AssetMissingError, ConfigError
from privinfer.types import Detection

CASCADE_FILE = "haarcascade_russian_plate_number.xml"
# OpenCV's own default minNeighbors: at the default threshold 0.5 this detector keeps what
# detectMultiScale keeps with its defaults.
_REFERENCE_NEIGHBOURS = 3


@register("plates")
class PlateCascadeDetector(SensitiveDetector):
    """Haar cascade plates; score = neighbours / (neighbours + 3), so 0.5 means OpenCV's default.

    scale_factor: image pyramid step (smaller finds more, slower). The cascade's window is 60x20
        pixels, so smaller plates are never found; upscale the image first if they matter.
    """

    labels = ("plate",)

    def __init__(
        self,
        options: DetectorOptions | None = None,
        scale_factor: float = 1.1,
    ) -> None:
        super().__init__(options)
        if scale_factor <= 1.0:
            raise ConfigError(f"plates: scale_factor must be above 1, got {scale_factor}")
        self.scale_factor = scale_factor
        path = cv2.data.haarcascades + CASCADE_FILE
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise AssetMissingError(f"{path}: OpenCV's plate cascade is missing; install opencv-python-headless 4.x")

    def detect_raw(self, rgb: np.ndarray) -> list[Detection]:
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        # minNeighbors=1 keeps every grouped window; the threshold on the neighbour score filters them.
        rects, neighbours = self._cascade.detectMultiScale2(gray, scaleFactor=self.scale_factor, minNeighbors=1)
        if len(rects) == 0:
            return []
        rects = np.asarray(rects, dtype=np.float64).reshape(-1, 4)
        boxes = np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], axis=1)
        return boxes_from_xyxy(boxes, neighbour_score(np.asarray(neighbours).ravel()), "plate")


def neighbour_score(neighbours: np.ndarray) -> np.ndarray:
    """A confidence-like score in [0, 1) from OpenCV neighbour counts: n / (n + 3), 0.5 at n = 3."""
    neighbours = np.asarray(neighbours, dtype=np.float64)
    return neighbours / (neighbours + _REFERENCE_NEIGHBOURS)
