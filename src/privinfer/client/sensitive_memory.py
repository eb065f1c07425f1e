"""Holding sensitive boxes across video frames, so a face missed in one frame is not leaked.

Detectors flicker: a face found in frame t may be missed in frame t+1. Each box is kept for
``hold_frames`` frames after it was last seen (grown a little each held frame to follow motion:
by ``growth_per_frame`` of its size, and by at least ``margin_px_per_frame`` pixels a side, since a
10 px face grows only 0.5 px a frame by 5% while its owner walks several); a fresh detection
overlapping a held box replaces it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from privinfer.boxes import iou
from privinfer.types import Box, Detection


@dataclass
class SensitiveMemory:
    hold_frames: int = 5
    growth_per_frame: float = 1.05
    margin_px_per_frame: float = 0.0
    _held: list[tuple[Detection, int]] = field(default_factory=list)

    def update(self, frame_index: int, current: list[Detection]) -> list[Detection]:
        """Current detections plus held ones not yet expired, each once."""
        fresh = [(d, frame_index) for d in current]
        current_boxes = np.array([d.box.as_list() for d in current], dtype=np.float64).reshape(-1, 4)
        kept = []
        for detection, seen in self._held:
            if frame_index - seen > self.hold_frames:
                continue
            if len(current_boxes) and iou(np.array(detection.box.as_list()), current_boxes).max() > 0.1:
                continue  # re-detected: the fresh box replaces it
            kept.append((detection, seen))
        self._held = fresh + kept
        held_out = [Detection(self._grown(d.box, frame_index - seen), d.label, d.score) for d, seen in kept]
        return current + held_out

    def _grown(self, box: Box, age: int) -> Box:
        grown = box.scaled_about_centre(self.growth_per_frame**age)
        margin = self.margin_px_per_frame * age
        if not margin:
            return grown
        return Box(min(grown.x1, box.x1 - margin), min(grown.y1, box.y1 - margin),
                   max(grown.x2, box.x2 + margin), max(grown.y2, box.y2 + margin))  # fmt: skip
