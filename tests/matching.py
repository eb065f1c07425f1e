"""Compare detections by matching, never by position: two runs that agree may list their boxes in
any order (faces on one row differ by a few pixels in y1, equal scores tie), so pairs are found by
overlap first and then compared."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from privinfer.types import Box, Detection


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 when either is empty)."""
    width = max(0.0, min(a.x2, b.x2) - max(a.x1, b.x1))
    height = max(0.0, min(a.y2, b.y2) - max(a.y1, b.y1))
    inter = width * height
    union = a.width * a.height + b.width * b.height - inter
    return inter / union if union > 0 else 0.0


def pair_detections(got: list[Detection], want: list[Detection]) -> list[tuple[Detection, Detection]]:
    """One-to-one pairs (got, want) of the same label that overlap most in total (the assignment that
    maximises the summed IoU). Fails, naming both lists, when the counts differ or a pair does not
    overlap at all: then the two runs did not find the same objects."""
    assert len(got) == len(want), (_describe(got), _describe(want))
    if not got:
        return []
    overlap = np.array([[box_iou(g.box, w.box) if g.label == w.label else 0.0 for w in want] for g in got])
    rows, cols = linear_sum_assignment(-overlap)
    pairs = []
    for row, col in zip(rows, cols, strict=True):
        assert overlap[row, col] > 0, f"no match for {got[row]} among {_describe(want)}"
        pairs.append((got[row], want[col]))
    return pairs


def assert_same_detections(got: list[Detection], want: list[Detection], box_tol: float, score_tol: float) -> None:
    """The same objects, each box within ``box_tol`` pixels and each score within ``score_tol``."""
    for a, b in pair_detections(got, want):
        assert a.label == b.label, (a, b)
        assert abs(a.score - b.score) <= score_tol, (a, b)
        assert np.allclose(a.box.as_list(), b.box.as_list(), atol=box_tol), (a.box, b.box)


def _describe(detections: list[Detection]) -> list[str]:
    return [f"{d.label} {d.score:.3f} {[round(v) for v in d.box.as_list()]}" for d in detections]
