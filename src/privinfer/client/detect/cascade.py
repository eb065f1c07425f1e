"""CenterFace guided by the persons the servers found in the previous frame (`faces-cascade`,
opt-in): a fraction of the full-resolution cost, at the price of the smallest faces.

A face too small for a shrunk frame belongs to a person, and in a video the servers have just
found that person in the previous frame. So a frame that continues a stream is searched twice,
cheaply: the whole frame shrunk to ``coarse_size`` on its long side (the large faces, wherever
they are), and one canvas holding the head region of every such person, each scaled so that its
expected head is about ``head_px`` pixels (never enlarged past ``max_upscale``). A frame that
knows nothing (a photo, a stream's first frame, a scene cut, the periodic refresh:
``known_objects.py``) runs CenterFace on the full-resolution frame, as ``faces`` does; so does a
frame whose canvas would be as large as the frame itself (a crowd). What that full-resolution
pass found stays sensitive until a later pass finds it again or the next discovery frame.

Why it is not the default (scripts/cascade_recall.py, README Status): the faces of 10-16 px that
CenterFace scores 0.2-0.35 on a whole frame (vtest.avi's pedestrians) are not found again on a
crop, even at native scale, aligned to the network's stride and with 32 px of context; and
marking small persons' heads sensitive instead (``small_head``) hides those persons from the
servers once the heads are filled, so the next frame has no person to search.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from privinfer.boxes import intersection_over_smaller
from privinfer.client.detect import register
from privinfer.client.detect.base import DetectorOptions, SensitiveDetector
from privinfer.client.detect.canvas import Canvas, pack, render, to_frame
from privinfer.client.detect.centerface import CenterFaceDetector
from privinfer.client.detect.task_classes import head_box
from privinfer.errors import ConfigError
from privinfer.types import Box, Detection

PERSON = "person"
HEAD = "head"
_FUSE_OVERLAP = 0.5  # boxes overlapping by this share of the smaller are one face (see _deduplicated)
# A standing person's head is about a seventh of the body's height; an upper-body box's about a
# quarter of its width (shoulders and arms). The larger of the two is the expected head.
_HEAD_OF_HEIGHT = 1 / 7
_HEAD_OF_WIDTH = 0.25


@register("faces-cascade")
class CascadeFaceDetector(SensitiveDetector):
    """CenterFace on a shrunk frame plus a canvas of the previous frame's persons' heads; full
    resolution on discovery frames.

    coarse_size: long side of the shrunk whole frame (0: no coarse pass).
    head_px: the size an expected head is scaled to on the canvas.
    max_upscale: the largest factor a head region is enlarged by (1: never enlarged).
    margin: each head region grown by this share of its person's width on each side and of its
        height above and below (the person moved since the previous frame).
    person_score: the weakest person of the previous frame used (below the pipeline's 0.35, the
        pipeline decodes persons down to it); canvas_score: the weakest whose head is searched.
    small_head: a person whose expected head is under this many pixels has its head region
        marked sensitive, unsearched (0: never; costs the task, see the module's note).
    track_frames: faces found in the last this many frames are searched again where they were.
    hold_discovered: what the full-resolution pass found stays sensitive until found again or
        the next discovery frame.
    hold_persons: a person not found again is still searched this many frames.
    threads: onnxruntime intra-op threads; None uses every core.
    """

    labels = ("face", HEAD)
    default_threshold = CenterFaceDetector.default_threshold

    def __init__(
        self,
        options: DetectorOptions | None = None,
        coarse_size: int = 160,
        head_px: float = 32.0,
        max_upscale: float = 1.0,
        margin: float = 0.15,
        person_score: float = 0.35,
        canvas_score: float = 0.35,
        small_head: float = 0.0,
        track_frames: int = 0,
        hold_discovered: bool = True,
        hold_persons: int = 0,
        threads: int | None = None,
    ) -> None:
        super().__init__(options)
        if coarse_size < 0 or not head_px > 0 or not max_upscale > 0 or not margin >= 0:
            raise ConfigError(
                "faces-cascade: coarse_size must be >= 0, head_px and max_upscale > 0, margin >= 0; got "
                f"{coarse_size}, {head_px}, {max_upscale}, {margin}"
            )
        self.coarse_size = coarse_size
        self.head_px = head_px
        self.max_upscale = max_upscale
        self.margin = margin
        self.person_score = person_score
        self.canvas_score = canvas_score
        self.small_head = small_head
        self.track_frames = track_frames
        self.hold_discovered = hold_discovered
        self.hold_persons = hold_persons
        # Persons of recent frames not found again, with the frames since: a head filled on the
        # client can hide its person from the servers, which must not unmask the head next frame.
        self._persons: list[tuple[Detection, int]] = []
        # What the last full-resolution pass found and no later pass found again: kept sensitive
        # until the next discovery frame (a face the cascade cannot see, off every person, stays hidden).
        self._discovered: list[Detection] = []
        # The faces found in the last `track_frames` frames, each with the frames since: each is
        # searched again where it was, so a face on a person the servers missed is not lost.
        self._recent: list[tuple[Box, int]] = []
        self._centerface = CenterFaceDetector(options, threads=threads)
        #: what the last call ran: "full", or "cascade" with the canvas's size (for benchmarks and tests)
        self.last_pass: str = ""
        self.last_canvas: Canvas | None = None

    def detect_raw(self, rgb: np.ndarray) -> list[Detection]:
        self.last_pass, self.last_canvas = "full", None
        found = self._centerface.detect_at(rgb, None, self.threshold)
        self._recent = [(d.box, 0) for d in found if d.score >= self.threshold] if self.track_frames else []
        self._discovered = list(found) if self.hold_discovered else []
        self._persons = []
        return found

    def detect_known(self, rgb: np.ndarray, known: Sequence[Detection]) -> list[Detection]:
        height, width = rgb.shape[:2]
        persons = [d for d in known if d.label == PERSON and d.score >= self.person_score]
        if self.hold_persons:
            held = [
                (d, age + 1) for d, age in self._persons
                if age + 1 <= self.hold_persons and not any(_overlaps(d.box, p.box) for p in persons)
            ]  # fmt: skip
            self._persons = [(p, 0) for p in persons] + held
            persons = persons + [d for d, _ in held]
        regions, heads = [], []
        for person, region in self._regions(persons, width, height):
            if _expected_head(person.box) < self.small_head:
                # Too small for CenterFace to score steadily: the head itself is sensitive.
                heads.append(Detection(region, HEAD, person.score))
            elif person.score >= self.canvas_score:
                regions.append((region, self._scale(person.box)))
        regions += [(region, scale) for region, scale in self._tracked(width, height)]
        canvas = pack(merge_regions(regions))
        coarse_area = _coarse_area(width, height, self.coarse_size)
        if canvas.width * canvas.height + coarse_area >= width * height:
            return self.detect_raw(rgb)  # the cascade would cost more than the frame itself
        self.last_pass, self.last_canvas = "cascade", canvas
        found = []
        if self.coarse_size:
            found += self._coarse(rgb)
        if canvas.placements:
            on_canvas = self._centerface.detect_at(render(rgb, canvas), None, self.threshold)
            found += to_frame(on_canvas, canvas)
        found = _deduplicated(found)
        if self.track_frames:
            fresh = [d.box for d in found if d.score >= self.threshold]
            self._recent = [(box, 0) for box in fresh] + [
                (box, age + 1) for box, age in self._recent
                if age + 1 < self.track_frames and not any(_overlaps(box, f) for f in fresh)
            ]  # fmt: skip
        # A discovered face found again is followed by the passes; one not found again stays where it was.
        self._discovered = [d for d in self._discovered if not any(_overlaps(d.box, f.box) for f in found)]
        return found + self._discovered + heads

    def _tracked(self, width: int, height: int) -> list[tuple[Box, float]]:
        """A region around each recent face: twice its size plus its width a side, at native scale
        (or less for a large face), so that it is found again where it moved."""
        out = []
        for box, _age in self._recent:
            grown = box.scaled_about_centre(2.0)
            region = _integer_inside(
                Box(grown.x1 - box.width, grown.y1 - box.height, grown.x2 + box.width, grown.y2 + box.height),
                width, height,
            )  # fmt: skip
            if region is not None:
                out.append((region, min(self.max_upscale, self.head_px / max(box.height, 1.0))))
        return out

    def _coarse(self, rgb: np.ndarray) -> list[Detection]:
        height, width = rgb.shape[:2]
        factor = min(1.0, self.coarse_size / max(width, height))
        if factor == 1:
            return self._centerface.detect_at(rgb, None, self.threshold)
        small = cv2.resize(rgb, (round(width * factor), round(height * factor)), interpolation=cv2.INTER_AREA)
        found = self._centerface.detect_at(small, None, self.threshold)
        fx, fy = small.shape[1] / width, small.shape[0] / height
        return [
            Detection(Box(d.box.x1 / fx, d.box.y1 / fy, d.box.x2 / fx, d.box.y2 / fy), d.label, d.score) for d in found
        ]

    def keeps(self, detection: Detection) -> bool:
        # A small head is sensitive whatever its person's score (that was chosen by person_score).
        return detection.label == HEAD or detection.score >= self.threshold

    def _regions(self, persons: Sequence[Detection], width: int, height: int) -> list[tuple[Detection, Box]]:
        """(person, head region with integer edges inside the frame) for each person."""
        out = []
        for detection in persons:
            person = detection.box
            head = head_box(person)
            dx, dy = self.margin * person.width, self.margin * head.height
            region = _integer_inside(Box(head.x1 - dx, head.y1 - dy, head.x2 + dx, head.y2 + dy), width, height)
            if region is not None:
                out.append((detection, region))
        return out

    def _scale(self, person: Box) -> float:
        return min(self.max_upscale, self.head_px / _expected_head(person))


def _expected_head(person: Box) -> float:
    return max(_HEAD_OF_HEIGHT * person.height, _HEAD_OF_WIDTH * person.width, 1.0)


def _coarse_area(width: int, height: int, coarse_size: int) -> int:
    if not coarse_size:
        return 0
    factor = min(1.0, coarse_size / max(width, height))
    return math.ceil(width * factor / 32) * 32 * math.ceil(height * factor / 32) * 32


def _deduplicated(found: list[Detection]) -> list[Detection]:
    """One box per face: boxes that overlap by half of the smaller one are replaced by the box
    enclosing them, at the best score. A union, not a pick, because a canvas box can be a face's
    top half cut by its head region's edge while the shrunk frame's box holds all of it; two faces
    fused this way only hide a little more."""
    merged = list(found)
    changed = True
    while changed and len(merged) > 1:
        changed = False
        for i in range(len(merged)):
            boxes = np.array([d.box.as_list() for d in merged[i + 1 :]]).reshape(-1, 4)
            if not len(boxes):
                continue
            overlaps = intersection_over_smaller(np.array(merged[i].box.as_list()), boxes)
            j = int(np.argmax(overlaps))
            if overlaps[j] >= _FUSE_OVERLAP:
                a, b = merged[i], merged.pop(i + 1 + j)
                box = Box(
                    min(a.box.x1, b.box.x1), min(a.box.y1, b.box.y1), max(a.box.x2, b.box.x2), max(a.box.y2, b.box.y2)
                )
                merged[i] = Detection(box, a.label, max(a.score, b.score))
                changed = True
                break
    return merged


def merge_regions(regions: Sequence[tuple[Box, float]], min_overlap: float = 0.5) -> list[tuple[Box, float]]:
    """Regions that overlap by ``min_overlap`` of the smaller one fused into their enclosing box at
    the larger of their scales, until none do: a crowd's overlapping heads are drawn once."""
    merged = list(regions)
    changed = True
    while changed:
        changed = False
        for i in range(len(merged)):
            for j in range(i + 1, len(merged)):
                (a, sa), (b, sb) = merged[i], merged[j]
                inter = max(0.0, min(a.x2, b.x2) - max(a.x1, b.x1)) * max(0.0, min(a.y2, b.y2) - max(a.y1, b.y1))
                if inter >= min_overlap * min(a.area, b.area):
                    union = Box(min(a.x1, b.x1), min(a.y1, b.y1), max(a.x2, b.x2), max(a.y2, b.y2))
                    merged[i] = (union, max(sa, sb))
                    del merged[j]
                    changed = True
                    break
            if changed:
                break
    return merged


def _integer_inside(box: Box, width: int, height: int) -> Box | None:
    """The box rounded outwards to whole pixels and clipped to the frame; None when nothing is left."""
    region = Box(
        math.floor(max(0.0, box.x1)), math.floor(max(0.0, box.y1)),
        math.ceil(min(width, box.x2)), math.ceil(min(height, box.y2)),
    )  # fmt: skip
    return region if region.width >= 1 and region.height >= 1 else None


def _overlaps(a: Box, b: Box) -> bool:
    return min(a.x2, b.x2) > max(a.x1, b.x1) and min(a.y2, b.y2) > max(a.y1, b.y1)
