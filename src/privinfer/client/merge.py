"""Merging the chunks' detections into one frame result without fusing neighbours.

SAHI-style greedy merging (the best box of a class absorbs and grows over every box it mostly
overlaps) turns four people side by side into one box. The rules here touch only what chunking
itself did to a detection:

1. Detections of one chunk are never fused or dropped against each other: the model's own NMS has
   already decided about them.
2. Two detections of different chunks are fused (into their union) only when both look cut by a
   chunk border: each touches its own chunk's edge at a border that lies inside the other chunk
   (the chunks overlap or abut there), the two line up across that border, and they overlap or
   touch along it. Such a pair is one object that neither chunk saw whole.
3. A fragment left over (it touches an inner border of its chunk, and no other fragment matched
   it) is dropped when another chunk reports a larger box of its class that holds most of it
   (``FRAGMENT_INSIDE``): that chunk saw the object whole. Otherwise it is kept: it may be all
   there is.
4. What remains across chunks is deduplicated by IoU, as the model's NMS would do on the whole
   frame: of two same-class boxes of different chunks overlapping by more than ``nms_iou``, the one
   from the chunk whose core holds its centre (else the higher-scoring) stays. A detection is never
   dropped for want of a duplicate, so that an object two chunks each placed in the other's core
   is still reported once. Boxes are never grown here.

All coordinates are work-frame pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from privinfer.boxes import iou
from privinfer.types import Box, Detection

EDGE_TOLERANCE = 4.0  # px: a box this close to its chunk's edge touches it (half a stride-8 cell)
MIN_ALIGNMENT = 0.5  # fragments of one object overlap this much across the cut (1-D IoU)
FRAGMENT_INSIDE = 0.7  # share of a leftover fragment inside another chunk's whole box that makes it a copy


@dataclass(frozen=True)
class ChunkDetections:
    """One chunk's geometry (``box`` sent, ``core`` answered for) and its decoded detections."""

    box: Box
    core: Box
    detections: Sequence[Detection]


@dataclass
class _Candidate:
    detection: Detection
    chunks: frozenset[int]
    cuts: frozenset[tuple[int, str]]  # (chunk, side) pairs where it touches an inner border


def merge_chunks(
    chunks: Sequence[ChunkDetections], nms_iou: float = 0.6, tolerance: float = EDGE_TOLERANCE
) -> list[Detection]:
    """The frame's detections from every chunk's, by the rules above; sorted by score, highest first."""
    candidates = [
        _Candidate(d, frozenset({i}), frozenset((i, side) for side in _cut_sides(d.box, i, chunks, tolerance)))
        for i, chunk in enumerate(chunks)
        for d in chunk.detections
    ]
    candidates = _fuse_fragments(candidates, chunks, tolerance)
    kept = [c for c in candidates if not _seen_whole_elsewhere(c, candidates)]
    return [c.detection for c in _deduplicate(kept, chunks, nms_iou)]


# ---------------------------------------------------------------- rule 2: fragments of a cut object

_OPPOSITE = {"x1": "x2", "x2": "x1", "y1": "y2", "y2": "y1"}


def _cut_sides(box: Box, index: int, chunks: Sequence[ChunkDetections], tolerance: float) -> list[str]:
    """Sides where ``box`` touches chunk ``index``'s edge and some other chunk continues past that edge."""
    own = chunks[index].box
    sides = []
    for side in ("x1", "y1", "x2", "y2"):
        edge = getattr(own, side)
        if abs(getattr(box, side) - edge) > tolerance:
            continue
        if any(_continues_past(other.box, own, side) for j, other in enumerate(chunks) if j != index):
            sides.append(side)
    return sides


def _continues_past(other: Box, own: Box, side: str) -> bool:
    """Whether ``other`` holds pixels just beyond ``own``'s ``side`` edge, alongside ``own``."""
    if side in ("x1", "x2"):
        beside = other.y1 < own.y2 and other.y2 > own.y1
        return beside and (other.x1 < own.x1 <= other.x2 if side == "x1" else other.x1 <= own.x2 < other.x2)
    beside = other.x1 < own.x2 and other.x2 > own.x1
    return beside and (other.y1 < own.y1 <= other.y2 if side == "y1" else other.y1 <= own.y2 < other.y2)


def _fuse_fragments(
    candidates: list[_Candidate], chunks: Sequence[ChunkDetections], tolerance: float
) -> list[_Candidate]:
    """Fuse pairs of fragments (rule 2), best-aligned pair first, until no pair is left."""
    while True:
        best: tuple[float, int, int, tuple[int, str], tuple[int, str]] | None = None
        for i, a in enumerate(candidates):
            for j in range(i + 1, len(candidates)):
                b = candidates[j]
                if a.detection.label != b.detection.label or a.chunks & b.chunks:
                    continue
                for cut_a in a.cuts:
                    for cut_b in b.cuts:
                        alignment = _fragments_meet(a.detection.box, cut_a, b.detection.box, cut_b, chunks, tolerance)
                        if alignment is not None and (best is None or alignment > best[0]):
                            best = (alignment, i, j, cut_a, cut_b)
        if best is None:
            return candidates
        _, i, j, cut_a, cut_b = best
        a, b = candidates[i], candidates[j]
        union = Box(
            min(a.detection.box.x1, b.detection.box.x1),
            min(a.detection.box.y1, b.detection.box.y1),
            max(a.detection.box.x2, b.detection.box.x2),
            max(a.detection.box.y2, b.detection.box.y2),
        )
        fused = _Candidate(
            Detection(union, a.detection.label, max(a.detection.score, b.detection.score)),
            a.chunks | b.chunks,
            (a.cuts | b.cuts) - {cut_a, cut_b},
        )
        candidates = [c for k, c in enumerate(candidates) if k not in (i, j)] + [fused]


def _fragments_meet(
    a: Box, cut_a: tuple[int, str], b: Box, cut_b: tuple[int, str], chunks: Sequence[ChunkDetections], tolerance: float
) -> float | None:
    """How well two fragments line up across facing cuts (1-D IoU across the cut), or None when
    they are not two halves of one object: the cuts must face each other, each border must lie
    inside (or on) the other chunk, and the fragments must overlap or touch along the cut axis."""
    (chunk_a, side_a), (chunk_b, side_b) = cut_a, cut_b
    if _OPPOSITE[side_a] != side_b:
        return None
    box_a, box_b = chunks[chunk_a].box, chunks[chunk_b].box
    if not (_continues_past(box_b, box_a, side_a) and _continues_past(box_a, box_b, side_b)):
        return None
    horizontal = side_a in ("x1", "x2")
    lower, upper = (a, b) if side_a in ("x2", "y2") else (b, a)  # lower ends at the cut, upper starts there
    gap = (upper.x1 - lower.x2) if horizontal else (upper.y1 - lower.y2)
    if gap > tolerance:
        return None
    # Halves of one object reach out on opposite sides: the lower one starts before the upper one,
    # and the upper one ends after the lower one. Two boxes that both fill the same overlap do not.
    if horizontal:
        reach = min(upper.x1 - lower.x1, upper.x2 - lower.x2)
    else:
        reach = min(upper.y1 - lower.y1, upper.y2 - lower.y2)
    if reach <= tolerance:
        return None
    alignment = _overlap_1d(a.y1, a.y2, b.y1, b.y2) if horizontal else _overlap_1d(a.x1, a.x2, b.x1, b.x2)
    return alignment if alignment >= MIN_ALIGNMENT else None


def _overlap_1d(a1: float, a2: float, b1: float, b2: float) -> float:
    inter = max(0.0, min(a2, b2) - max(a1, b1))
    union = max(a2, b2) - min(a1, b1)
    return inter / union if union > 0 else 0.0


# ---------------------------------------------------------------- rules 3 and 4: one box per object


def owner(box: Box, chunks: Sequence[ChunkDetections]) -> int:
    """The chunk whose core holds the box's centre (the nearest core when none does, as past the
    covered area's edge); ties go to the first."""
    cx, cy = (box.x1 + box.x2) / 2, (box.y1 + box.y2) / 2

    def distance(core: Box) -> float:
        dx = max(core.x1 - cx, 0.0, cx - core.x2)
        dy = max(core.y1 - cy, 0.0, cy - core.y2)
        return dx * dx + dy * dy

    return min(range(len(chunks)), key=lambda i: (distance(chunks[i].core), i))


def _seen_whole_elsewhere(candidate: _Candidate, candidates: Sequence[_Candidate]) -> bool:
    """Whether a leftover fragment (rule 3) lies mostly inside a larger same-class box of another chunk."""
    if not candidate.cuts or len(candidate.chunks) > 1:
        return False
    box = candidate.detection.box
    for other in candidates:
        if other.detection.label != candidate.detection.label or other.chunks & candidate.chunks:
            continue
        outer = other.detection.box
        if outer.area <= box.area:
            continue
        inter = max(0.0, min(box.x2, outer.x2) - max(box.x1, outer.x1)) * max(
            0.0, min(box.y2, outer.y2) - max(box.y1, outer.y1)
        )
        if box.area > 0 and inter / box.area >= FRAGMENT_INSIDE:
            return True
    return False


def _deduplicate(candidates: list[_Candidate], chunks: Sequence[ChunkDetections], nms_iou: float) -> list[_Candidate]:
    def priority(c: _Candidate) -> tuple[bool, float]:
        return (owner(c.detection.box, chunks) in c.chunks, c.detection.score)

    ordered = sorted(candidates, key=priority, reverse=True)
    kept: list[_Candidate] = []
    for candidate in ordered:
        box = np.array(candidate.detection.box.as_list())
        rivals = [k for k in kept if k.detection.label == candidate.detection.label and not k.chunks & candidate.chunks]
        if rivals and iou(box, np.array([r.detection.box.as_list() for r in rivals])).max() > nms_iou:
            continue
        kept.append(candidate)
    return sorted((c for c in kept), key=lambda c: -c.detection.score)
