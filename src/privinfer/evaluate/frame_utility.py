"""What region privacy costs in detection, on whole photos of people, per obfuscator.

The private pipeline (the default face detector, the content-aware partition over N servers)
privatizes only the sensitive regions: a chunk with faces goes as pixels with the faces filled,
plus a feature patch per face when the obfuscator works on features. Its detections are scored
against the unprotected whole frame's at the same working size (confident ones, >= 0.35; the
private pipeline's ranked down to 0.05), over the photos in which the detector found a face and
over all of them: mAP@[.5:.95], mAP@0.5 and person AP. Also the client's obfuscation time per
photo and the bytes sent against the raw frame's.
"""

from __future__ import annotations

import numpy as np

from privinfer.evaluate.utility import PREDICTION_THRESHOLD
from privinfer.metrics.detection_map import coco_map, mean_average_precision
from privinfer.pipeline import Pipeline, PipelineConfig
from privinfer.serve import create_pool

# The unprotected frame's confident detections are the ground truth; the private pipeline's are
# ranked down to PREDICTION_THRESHOLD, as mAP ranks them.
REFERENCE_THRESHOLD = 0.35


def _ap(predictions: list, reference: list, label: str | None = None) -> dict:
    if label is not None:
        predictions = [[d for d in frame if d.label == label] for frame in predictions]
        reference = [[d for d in frame if d.label == label] for frame in reference]
    return {"map": coco_map(predictions, reference), "map50": mean_average_precision(predictions, reference, 0.5)}


def frame_utility(entries: dict[str, tuple], photos: list[np.ndarray], servers: int) -> dict:
    """``entries``: label -> (obfuscator name, options) or (obfuscator name, options, pipeline
    settings: ``{"fill": "black", "mask_scale": 1.6}``, what differs from the default). Returns the
    photo counts and, per label,
    ``all`` / ``with_faces`` / ``person_with_faces`` ({map, map50}), ``obfuscate_ms`` (median) and
    ``bytes_vs_raw`` (median over the photos with faces)."""
    with create_pool("threads", servers) as pool:
        base = PipelineConfig(servers=servers, backend="threads", hold_frames=0, learn_capacities=False)
        whole = Pipeline(PipelineConfig(servers=1, sensitive=(), hold_frames=0, score_threshold=PREDICTION_THRESHOLD))
        reference, raw_bytes, faces = [], [], []
        for photo in photos:
            whole.reset()
            unprotected = whole(photo)
            reference.append([d for d in unprotected.detections if d.score >= REFERENCE_THRESHOLD])
            raw_bytes.append(unprotected.bytes_sent)
        whole.close()
        rows = {}
        for label, (name, options, *settings) in entries.items():
            chosen = {"obfuscator": name, "obfuscator_options": options, "score_threshold": PREDICTION_THRESHOLD}
            config = PipelineConfig(**{**base.__dict__, **chosen, **(settings[0] if settings else {})})
            pipeline = Pipeline(config, pool=pool)
            results = []
            for photo in photos:
                pipeline.reset()
                results.append(pipeline(photo))
            faces = [bool(r.sensitive) for r in results]
            found = [r.detections for r in results]
            with_faces = [i for i, f in enumerate(faces) if f]
            rows[label] = {
                "obfuscator": name,
                "fill": pipeline.fill,
                "mask_scale": config.mask_scale,
                "all": _ap(found, reference),
                "with_faces": _ap([found[i] for i in with_faces], [reference[i] for i in with_faces]),
                "person_with_faces": _ap(
                    [found[i] for i in with_faces], [reference[i] for i in with_faces], label="person"
                ),
                "obfuscate_ms": float(np.median([r.timings_ms["obfuscate"] for r in results])),
                "bytes_vs_raw": float(np.median([results[i].bytes_sent / raw_bytes[i] for i in with_faces] or [1.0])),
            }
    return {"photos": len(photos), "with_faces": int(sum(faces)), "servers": servers, "obfuscators": rows}
