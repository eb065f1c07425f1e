"""Sensitive classes found by the task model itself (persons; screens that may show private data).

These cost a full NanoDet pass on the client, so they are for clients that can afford it; the
dedicated face / plate / text detectors are much cheaper.
"""

from __future__ import annotations

import numpy as np

from privinfer.detect import register
from privinfer.detect.base import DetectorOptions, SensitiveDetector
from privinfer.models import nanodet
from privinfer.types import Detection


class TaskClassDetector(SensitiveDetector):
    """Runs NanoDet on the whole image and keeps only the given COCO classes."""

    classes: tuple[str, ...] = ()
    default_threshold = 0.3

    def __init__(self, options: DetectorOptions | None = None, device: str = "cpu", input_size: int = 416) -> None:
        super().__init__(options)
        self.labels = self.classes
        self.input_size = input_size
        self._model = nanodet.load_nanodet(device)
        # The decoder's own threshold is lowered so ours (options.threshold) is the one that applies.
        self._decode = nanodet.DecodeOptions(score_threshold=min(0.05, self.threshold))

    def detect_raw(self, rgb: np.ndarray) -> list[Detection]:
        found = nanodet.detect(self._model, rgb, self.input_size, self._decode)
        return [d for d in found if d.label in self.classes]


@register("persons")
class PersonDetector(TaskClassDetector):
    classes = ("person",)


@register("screens")
class ScreenDetector(TaskClassDetector):
    classes = ("tv", "laptop", "cell phone")
