"""What every sensitive-object detector looks like from the outside."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from privinfer.types import Box, Detection


@dataclass(frozen=True)
class DetectorOptions:
    """Options shared by all sensitive-object detectors.

    threshold: minimum confidence kept; None uses the detector's own default (scores are not
        calibrated alike: NanoDet's quality scores run lower than CenterFace's).
    mask_scale: each box is grown about its centre by this factor (deface uses 1.3) so that a
        slightly loose detector still covers hair, chin and ears.
    """

    threshold: float | None = None
    mask_scale: float = 1.3


class SensitiveDetector(ABC):
    """Finds sensitive objects in an RGB uint8 image, boxes in that image's pixel coordinates."""

    #: labels this detector can output, e.g. ("face",)
    labels: tuple[str, ...] = ()
    #: threshold used when the options leave it unset
    default_threshold: float = 0.5
    #: the weakest of the previous frame's person detections ``detect_known`` uses (the pipeline
    #: then decodes persons down to it); None: it uses no persons
    person_score: float | None = None

    def __init__(self, options: DetectorOptions | None = None) -> None:
        self.options = options or DetectorOptions()
        self.last_found: list[Detection] = []  # what the last call returned (benchmarks count boxes from it)

    @property
    def threshold(self) -> float:
        return self.default_threshold if self.options.threshold is None else self.options.threshold

    def __call__(self, rgb: np.ndarray, known: Sequence[Detection] | None = None) -> list[Detection]:
        """Detect, then apply the threshold and the box margin, clipped to the image.

        known: in a video, the previous frame's task-model detections (frame pixels) when this
            frame continues it; None on a frame that knows nothing (a photo, a stream's first
            frame, a scene cut, a periodic refresh). Only a detector that is guided by them
            (``detect_known``) uses them.
        """
        height, width = rgb.shape[:2]
        found = []
        raw = self.detect_raw(rgb) if known is None else self.detect_known(rgb, known)
        self.last_found = found
        for detection in raw:
            if not self.keeps(detection):
                continue
            box = detection.box.scaled_about_centre(self.options.mask_scale).clipped(width, height)
            if box.area > 0:
                found.append(Detection(box, detection.label, detection.score))
        return found

    def keeps(self, detection: Detection) -> bool:
        """Whether a raw detection is sensitive: by default, when it scores at least the threshold."""
        return detection.score >= self.threshold

    @abstractmethod
    def detect_raw(self, rgb: np.ndarray) -> list[Detection]:
        """Detections before threshold and margin (scores may be below the threshold)."""

    def detect_known(self, rgb: np.ndarray, known: Sequence[Detection]) -> list[Detection]:
        """``detect_raw`` on a frame that continues a stream whose previous frame held ``known``;
        a detector that can use them searches less of the frame. By default: ``detect_raw``."""
        return self.detect_raw(rgb)


def boxes_from_xyxy(boxes: np.ndarray, scores: np.ndarray, label: str) -> list[Detection]:
    """Turn (N,4) x1,y1,x2,y2 and (N,) scores into detections with one label."""
    return [Detection(Box(*map(float, b)), label, float(s)) for b, s in zip(boxes, scores, strict=True)]
