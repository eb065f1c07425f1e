"""What tiling alone costs: the tiled pipeline (no privacy) against the untiled model on the same frames.

Both are scored as the evaluation scores utility: the tiled pipeline's detections down to score
0.05 against the untiled model's confident ones (>= 0.35), mAP@0.5 and mAP@[.5:.95], for a few
tile sizes. Frames: the darknet dog / person / horses photos and the first 12 corpus scene frames
(`privinfer data fetch` builds the corpus).

    .venv/bin/python scripts/tiling_quality.py --tiles 256,320
"""

from __future__ import annotations

import argparse

from privinfer import assets
from privinfer.data.corpus import load_split
from privinfer.evaluate.utility import OPERATING_THRESHOLD, PREDICTION_THRESHOLD
from privinfer.images import read_image
from privinfer.metrics.detection_map import coco_map, mean_average_precision
from privinfer.models import nanodet
from privinfer.pipeline import Pipeline, PipelineConfig

PHOTOS = ("dog.jpg", "person.jpg", "horses.jpg")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiles", default="256,320", help="tile sizes to compare")
    parser.add_argument("--scene-frames", type=int, default=12)
    args = parser.parse_args()

    frames = [read_image(assets.require(name)).pixels for name in PHOTOS]
    frames += list(load_split("scenes").images)[: args.scene_frames]
    model = nanodet.load_nanodet()
    low = nanodet.DecodeOptions(score_threshold=PREDICTION_THRESHOLD)
    untiled = [[d for d in nanodet.detect(model, rgb, options=low) if d.score >= OPERATING_THRESHOLD] for rgb in frames]
    print(f"{len(frames)} frames, {sum(map(len, untiled))} untiled detections (score >= {OPERATING_THRESHOLD})")
    print("| tile | mAP@0.5 | mAP@[.5:.95] |\n|---|---|---|")
    for tile in (int(t) for t in args.tiles.split(",")):
        config = PipelineConfig(
            servers=1, obfuscator="unaltered", sensitive=(), tile=tile, score_threshold=PREDICTION_THRESHOLD
        )
        with Pipeline(config) as pipeline:
            tiled = []
            for rgb in frames:
                pipeline.reset()
                tiled.append(pipeline(rgb).detections)
        print(f"| {tile} | {mean_average_precision(tiled, untiled, 0.5):.3f} | {coco_map(tiled, untiled):.3f} |")


if __name__ == "__main__":
    main()
