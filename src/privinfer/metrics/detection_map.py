"""Detection mAP between two sets of detections (e.g. a private pipeline vs the unaltered one).

COCO-style: per class, detections sorted by score are matched greedily to unmatched ground-truth
boxes at an IoU threshold; AP is the area under the precision envelope sampled at 101 recall
points; mAP averages over classes that have ground truth, and mAP@[.5:.95] over ten thresholds.
For true mAP on a user's COCO-format data set, pycocotools gives the reference numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from privinfer.boxes import iou
from privinfer.types import Detection


def average_precision(
    predictions: Sequence[Sequence[Detection]], truths: Sequence[Sequence[Detection]], label: str, threshold: float
) -> float | None:
    """AP for one class over frames; None when the class has no ground truth."""
    total = sum(1 for frame in truths for d in frame if d.label == label)
    if total == 0:
        return None
    scored: list[tuple[float, bool]] = []
    for predicted, truth in zip(predictions, truths, strict=True):
        gt = np.array([d.box.as_list() for d in truth if d.label == label], dtype=np.float64).reshape(-1, 4)
        used = np.zeros(len(gt), dtype=bool)
        for detection in sorted((d for d in predicted if d.label == label), key=lambda d: -d.score):
            matched = False
            if len(gt):
                overlaps = iou(np.array(detection.box.as_list()), gt)
                overlaps[used] = -1
                best = int(np.argmax(overlaps))
                if overlaps[best] >= threshold:
                    used[best] = matched = True
            scored.append((detection.score, matched))
    if not scored:
        return 0.0
    scored.sort(key=lambda s: -s[0])
    hits = np.cumsum([m for _, m in scored])
    precision = hits / np.arange(1, len(scored) + 1)
    recall = hits / total
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    samples = np.linspace(0, 1, 101)
    indices = np.searchsorted(recall, samples, side="left")
    return float(np.mean([envelope[i] if i < len(envelope) else 0.0 for i in indices]))


def mean_average_precision(
    predictions: Sequence[Sequence[Detection]], truths: Sequence[Sequence[Detection]], threshold: float = 0.5
) -> float:
    """mAP at one IoU threshold over the classes present in ``truths`` (1.0 when there is no truth and no
    prediction, 0.0 when there is no truth but something was predicted)."""
    labels = sorted({d.label for frame in truths for d in frame})
    if not labels:
        return 1.0 if not any(predictions) else 0.0
    values = [average_precision(predictions, truths, label, threshold) for label in labels]
    return float(np.mean([v for v in values if v is not None]))


def coco_map(predictions: Sequence[Sequence[Detection]], truths: Sequence[Sequence[Detection]]) -> float:
    """mAP@[.5:.95]: the mean over IoU thresholds 0.50, 0.55, ..., 0.95."""
    return float(np.mean([mean_average_precision(predictions, truths, t) for t in np.arange(0.5, 0.96, 0.05)]))
