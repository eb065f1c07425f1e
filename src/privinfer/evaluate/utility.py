"""Utility of one obfuscator: detection mAP of the private pipeline vs the unaltered one.

Both pipelines run with the same settings and report every detection down to
``PREDICTION_THRESHOLD``, as COCO evaluations of detectors do: average precision ranks
predictions by score, and cutting them at the operating threshold would count every box an
obfuscator merely makes a little less confident as missed. The pseudo ground truth (no box labels
exist offline) is the unaltered pipeline's detections that clear the operating threshold (what
the pipeline reports by default). Every tile is privatized (the whole frame is declared
sensitive), so the figure is the obfuscator's own cost, not diluted by raw tiles.

Measured on 48 scene tiles: Gaussian noise of sigma 0.1 on the embedding scores mAP 0.886 with
the whole ranking and 0.824 cut at 0.35; a server tail fine-tuned to reproduce the original
outputs (distillation loss 0.002) 0.997 against 0.809. The tile merge never lets a weak
detection grow a confident box (merge.py), so the confident detections of a low-threshold run are
the ones the pipeline reports at the operating threshold.

With a user's labelled COCO-format set, `true_map` also scores the same private pipeline (and the
unaltered one) against real boxes with pycocotools (metrics/coco_map.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from privinfer.client.detect.base import DetectorOptions, SensitiveDetector
from privinfer.metrics.coco_map import CocoDataset, CocoScores, evaluate_coco
from privinfer.metrics.detection_map import coco_map, mean_average_precision
from privinfer.pipeline import Pipeline, PipelineConfig
from privinfer.serve import ServerPool
from privinfer.types import Box, Detection


class WholeFrameSensitive(SensitiveDetector):
    """Declares the whole frame sensitive, so that every tile is privatized."""

    def __init__(self) -> None:
        super().__init__(DetectorOptions(threshold=0.0, mask_scale=1.0))

    def detect_raw(self, rgb: np.ndarray) -> list[Detection]:
        return [Detection(Box(0, 0, rgb.shape[1], rgb.shape[0]), "everything", 1.0)]


@dataclass(frozen=True)
class UtilityScores:
    map50: float
    map: float
    map50_degradation_pct: float
    map_degradation_pct: float
    obfuscate_ms_per_frame: float
    true_map: CocoScores | None = None  # on the user's COCO-format set, when one is configured


PREDICTION_THRESHOLD = 0.05  # lowest score of a prediction that mAP ranks (detectron's test default)
OPERATING_THRESHOLD = PipelineConfig.score_threshold  # what the pipeline reports: the pseudo ground truth


def pseudo_ground_truth(detections: list[list[Detection]]) -> list[list[Detection]]:
    """The unaltered pipeline's confident detections (``detections_on`` output at the prediction threshold)."""
    return [[d for d in frame if d.score >= OPERATING_THRESHOLD] for frame in detections]


def evaluation_pipeline(obfuscator: str, options: dict, pool: ServerPool, private: bool) -> Pipeline:
    """The pipeline utility is measured on: every tile privatized by ``obfuscator`` when ``private``,
    every tile raw otherwise; detections down to ``PREDICTION_THRESHOLD``. Not to be closed: the pool is shared."""
    config = PipelineConfig(
        obfuscator=obfuscator,
        obfuscator_options=options,
        sensitive=(),
        hold_frames=0,
        score_threshold=PREDICTION_THRESHOLD,
    )
    return Pipeline(config, pool=pool, detectors=[WholeFrameSensitive()] if private else [])


def detections_on(frames: list[np.ndarray], obfuscator: str, options: dict, pool: ServerPool, private: bool):
    """Detections per frame (down to ``PREDICTION_THRESHOLD``) and the median ms of the obfuscate stage."""
    pipeline = evaluation_pipeline(obfuscator, options, pool, private)
    results = []
    for frame in frames:
        pipeline.reset()  # unrelated frames: no held boxes, no tracked RoI
        results.append(pipeline(frame))
    return [r.detections for r in results], float(np.median([r.timings_ms["obfuscate"] for r in results]))


def true_map(dataset: CocoDataset, obfuscator: str, options: dict, pool: ServerPool, private: bool) -> CocoScores:
    """COCOeval mAP of the evaluation pipeline on a labelled set (``private`` as in `evaluation_pipeline`)."""
    pipeline = evaluation_pipeline(obfuscator, options, pool, private)

    def detect(frame: np.ndarray) -> list[Detection]:
        pipeline.reset()  # unrelated photos
        return pipeline(frame).detections

    return evaluate_coco(dataset, detect)


def evaluate_utility(
    frames, obfuscator: str, options: dict, pool: ServerPool, reference, coco: CocoDataset | None = None
) -> UtilityScores:
    """mAP of the private pipeline against ``reference`` (`pseudo_ground_truth` of the unaltered pipeline on
    ``frames``), and its true mAP on ``coco`` when given."""
    found, obfuscate_ms = detections_on(frames, obfuscator, options, pool, private=True)
    map50, full = mean_average_precision(found, reference, 0.5), coco_map(found, reference)
    labelled = true_map(coco, obfuscator, options, pool, private=True) if coco is not None else None
    return UtilityScores(map50, full, 100 * (1 - map50), 100 * (1 - full), obfuscate_ms, labelled)
