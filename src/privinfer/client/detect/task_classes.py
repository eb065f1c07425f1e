"""Sensitive classes found by the task model itself (persons; screens that may show private data).

These cost a full NanoDet pass on the client, so they are for clients that can afford it; the
dedicated face / plate / text detectors are much cheaper.
"""

from __future__ import annotations

import numpy as np

from privinfer.client.detect import register
from privinfer.client.detect.base import DetectorOptions, SensitiveDetector
from privinfer.models import nanodet
from privinfer.types import Box, Detection

# A head's height as a share of a standing person's box (NanoDet's boxes are loose: a head is
# about 1/7 of a body), and as a share of the box width for a cropped, upper-body box.
HEAD_SHARE_OF_HEIGHT = 0.3
HEAD_SHARE_OF_WIDTH = 0.6


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


@register("heads")
class HeadDetector(TaskClassDetector):
    """The head region of every person the task model finds, for faces too small or too turned
    away for a face detector (pedestrians 10 px high, backs of heads). Costs a NanoDet pass on the
    client, as `persons` does, but hides only the top of each person (`head_box`)."""

    classes = ("person",)

    def detect_raw(self, rgb: np.ndarray) -> list[Detection]:
        return [Detection(head_box(d.box), "head", d.score) for d in super().detect_raw(rgb)]


def head_box(person: Box) -> Box:
    """The top of a person box, full width: 30% of its height, or for a short, wide (upper-body)
    box 60% of its width, whichever is taller, never more than the box."""
    height = min(person.height, max(HEAD_SHARE_OF_HEIGHT * person.height, HEAD_SHARE_OF_WIDTH * person.width))
    return Box(person.x1, person.y1, person.x2, person.y1 + height)
