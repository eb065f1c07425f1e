"""What region privacy costs in detection, on whole photos of people, per obfuscator.

The private pipeline (the default face detector, the content-aware partition over N servers)
privatizes only the sensitive regions: a chunk with faces goes as pixels with the faces filled,
plus a feature patch per face when the obfuscator works on features. Its detections are scored
against the unprotected whole frame's at the same working size (confident ones, >= 0.35; the
private pipeline's ranked down to 0.05), over the photos in which the detector found a face and
over all of them. Privacy is not measured here: `privinfer evaluate` attacks what each obfuscator
sends.
"""

from __future__ import annotations

import numpy as np

from privinfer.bench.context import BenchContext
from privinfer.bench.partition_quality import PREDICTION_THRESHOLD, REFERENCE_THRESHOLD, people_photos
from privinfer.bench.registry import Section, register
from privinfer.metrics.detection_map import coco_map, mean_average_precision
from privinfer.pipeline import Pipeline, PipelineConfig
from privinfer.serve import create_pool

OBFUSCATORS = ("unaltered", "channel-mask", "gaussian", "random-mask", "fill", "blur", "mosaic")


def _ap(predictions: list, reference: list, label: str | None = None) -> dict:
    if label is not None:
        predictions = [[d for d in frame if d.label == label] for frame in predictions]
        reference = [[d for d in frame if d.label == label] for frame in reference]
    return {"map": coco_map(predictions, reference), "map50": mean_average_precision(predictions, reference, 0.5)}


def measure(ctx: BenchContext) -> dict:
    photos = people_photos(4 if ctx.options.quick else None)
    servers = ctx.servers
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
        for name in OBFUSCATORS:
            options = ctx.privacy.options(name)
            config = PipelineConfig(
                **{**base.__dict__, "obfuscator": name, "obfuscator_options": options,
                   "score_threshold": PREDICTION_THRESHOLD}
            )  # fmt: skip
            pipeline = Pipeline(config, pool=pool)
            results = []
            for photo in photos:
                pipeline.reset()
                results.append(pipeline(photo))
            faces = [bool(r.sensitive) for r in results]
            found = [r.detections for r in results]
            with_faces = [i for i, f in enumerate(faces) if f]
            rows[name] = {
                "all": _ap(found, reference),
                "with_faces": _ap([found[i] for i in with_faces], [reference[i] for i in with_faces]),
                "person_with_faces": _ap(
                    [found[i] for i in with_faces], [reference[i] for i in with_faces], label="person"
                ),
                "obfuscate_ms": float(np.median([r.timings_ms["obfuscate"] for r in results])),
                # Bytes sent against the raw working frame's, on the photos with faces (the others send it raw).
                "bytes_vs_raw": float(np.median([results[i].bytes_sent / raw_bytes[i] for i in with_faces] or [1.0])),
            }
    return {"photos": len(photos), "with_faces": int(sum(faces)), "servers": servers, "obfuscators": rows}


def markdown(figures: dict) -> list[str]:
    lines = [
        f"{figures['photos']} photos of people at 640 px ({figures['with_faces']} with a face found), the private "
        f"pipeline over {figures['servers']} servers against the unprotected whole frame: mAP@[.5:.95] / mAP@0.5.",
        "",
        "| obfuscator | photos with faces | person AP, photos with faces | all photos | obfuscate ms (median) "
        "| bytes vs raw frame |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in figures["obfuscators"].items():
        cells = [f"{row[k]['map']:.3f} / {row[k]['map50']:.3f}" for k in ("with_faces", "person_with_faces", "all")]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {row['obfuscate_ms']:.1f} | {row['bytes_vs_raw']:.2f} |")
    return lines


SECTION = register(Section("region", "Region privacy: detection kept per obfuscator", measure, markdown))
