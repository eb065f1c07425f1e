"""Box geometry on numpy arrays: overlap and non-maximum suppression, as pure functions.

Boxes are (N, 4) float arrays of x1, y1, x2, y2 in pixels, x2/y2 exclusive as in `types.Box`.
"""

from __future__ import annotations

import numpy as np


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one (4,) box with each of (N, 4) boxes; (N,) floats, 0 where both are empty."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    width = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    height = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = width * height
    union = _area(np.asarray(box, dtype=np.float64)) + _area(boxes) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression.

    Takes (N, 4) boxes and (N,) scores; a box is dropped when its IoU with a kept, higher-scoring
    box exceeds `iou_threshold`. Returns the kept indices, highest score first.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(best)
        order = rest[iou(boxes[best], boxes[rest]) <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def batched_nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou_threshold: float) -> np.ndarray:
    """`nms` within each class: a box is dropped only by a kept box of its own class. Returns the
    kept indices, highest score first (what ``torchvision.ops.batched_nms`` returns, without
    importing torchvision, which costs a second of start-up for this one function)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if not len(boxes):
        return np.zeros(0, dtype=np.int64)
    # Each class moved to a place of its own, so boxes of different classes never overlap.
    offsets = np.asarray(classes, dtype=np.float64)[:, None] * (np.abs(boxes).max() + 1)
    return nms(boxes + offsets, scores, iou_threshold)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe-style blending suppression: each cluster becomes its score-weighted mean box.

    Clusters are formed greedily from the highest score down: the best remaining box takes every
    remaining box whose IoU with it exceeds `iou_threshold` (itself included). Returns the blended
    (K, 4) boxes and, for each, the best score of its cluster, highest first.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, kind="stable")
    blended, best_scores = [], []
    while order.size:
        overlaps = iou(boxes[order[0]], boxes[order]) > iou_threshold
        overlaps[0] = True  # an empty box has IoU 0 with itself but still forms its own cluster
        cluster = order[overlaps]
        weights = scores[cluster]
        blended.append(weights @ boxes[cluster] / weights.sum() if weights.sum() > 0 else boxes[order[0]])
        best_scores.append(scores[order[0]])
        order = order[~overlaps]
    return np.asarray(blended, dtype=np.float64).reshape(-1, 4), np.asarray(best_scores, dtype=np.float64)


def _area(boxes: np.ndarray) -> np.ndarray:
    return np.clip(boxes[..., 2] - boxes[..., 0], 0, None) * np.clip(boxes[..., 3] - boxes[..., 1], 0, None)


def intersection_over_smaller(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over the smaller box's area (SAHI's IOS): 1 when one box lies inside the other."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    width = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    height = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    smaller = np.minimum(_area(np.asarray(box, dtype=np.float64)), _area(boxes))
    inter = width * height
    return np.divide(inter, smaller, out=np.zeros_like(inter), where=smaller > 0)
