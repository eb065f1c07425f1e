"""What the partition knows about where objects are: the previous frame's detections, in video.

The partition cuts where no known object is. In a video the objects of frame t are close to where
frame t-1 found them (Elf partitions by the previous frames' region proposals). Nothing is known
on a still photo, the first frame of a stream, after a scene cut, or at a periodic refresh (every
``refresh`` frames, so that a stream does not keep cutting by boxes that drift away from what is
there): those frames are *discovery* frames, partitioned by the discovery strategy instead.

A scene cut is seen on a 32x24 grey thumbnail: a mean absolute change above ``cut_threshold``
(of 255) from the previous frame's means the old boxes say nothing about the new picture.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from privinfer.types import Box, Detection

THUMBNAIL = (32, 24)
# Only confident detections say where objects are: a run asking for weak ones too (as mAP
# evaluation does) would otherwise fill the frame with boxes that no cut can avoid.
MIN_SCORE = 0.35


@dataclass
class KnownObjects:
    """The last frame's confident detections (frame pixels, with their labels: the face detector
    looks for small faces on the persons among them) and whether the next frame can use them."""

    refresh: int = 30  # every this many frames, a discovery frame (0: never)
    cut_threshold: float = 40.0
    _objects: list[Detection] = field(default_factory=list)
    _thumbnail: np.ndarray | None = None
    _since_discovery: int = 0

    def lookup(self, rgb: np.ndarray) -> list[Detection] | None:
        """The known detections for this frame (empty when the previous frame found nothing
        confident), or None when it is a discovery frame. Call it once per frame, with the frame
        (any size: only its thumbnail is compared)."""
        return None if self.discovery(rgb) else self.objects()

    def discovery(self, rgb: np.ndarray) -> bool:
        """Whether this frame is a discovery frame (a scene cut, or a refresh is due). Call it once
        per frame, in order; ``objects`` then says what is known, once the previous frame is observed."""
        thumbnail = _thumbnail(rgb)
        cut = self._thumbnail is None or float(np.abs(thumbnail - self._thumbnail).mean()) > self.cut_threshold
        self._thumbnail = thumbnail
        due = self.refresh > 0 and self._since_discovery >= self.refresh
        if cut or due:
            self._since_discovery = 0
            return True
        self._since_discovery += 1
        return False

    def objects(self) -> list[Detection]:
        """The last observed frame's detections (see ``observe``)."""
        return list(self._objects)

    def observe(self, detections: Sequence[Detection], weak_persons: Sequence[Detection] = ()) -> None:
        """The frame's final detections: what the next frame will be partitioned by; and persons
        below MIN_SCORE, for a face detector that searches their heads (never cut around)."""
        self._objects = [d for d in detections if d.score >= MIN_SCORE] + list(weak_persons)


def confident(known: Sequence[Detection]) -> list[Detection]:
    """The known detections that say where objects are (what the partition cuts around)."""
    return [d for d in known if d.score >= MIN_SCORE]


def _thumbnail(rgb: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
    return cv2.resize(grey, THUMBNAIL, interpolation=cv2.INTER_AREA).astype(np.float32)


def person_priors(faces: Sequence[Box], width: int, height: int) -> list[Box]:
    """Where the body of each face probably is: a box about 3 face widths wide reaching 6 face
    heights below the face (the proportions of a standing adult), clipped to the frame. A discovery
    frame's partition then avoids cutting through people it can infer from the faces it found."""
    priors = []
    for face in faces:
        centre = (face.x1 + face.x2) / 2
        priors.append(Box(centre - 1.5 * face.width, face.y1, centre + 1.5 * face.width, face.y2 + 5 * face.height))
    return [p.clipped(width, height) for p in priors]
