"""Measure CenterFace's activation ranges for int8 static quantisation, on the corpus's scene frames.

Writes ``src/privinfer/client/detect/weights/centerface-int8-ranges.json``: what
``privinfer.models.quantize`` rebuilds the int8 detector from (``CenterFaceDetector(precision="int8")``;
not the default: it loses faces, docs/sensitive-detection.md). The frames are the corpus's 84
scene frames (vtest.avi and bikes.mp4 pedestrians, the darknet photos, frames of the face videos;
`privinfer data fetch`, then `privinfer data build`), each also mirrored, fed as CenterFace is fed (RGB 0..255, NCHW).
Calibration uses min/max ranges: it only sets the scale of each activation, it learns nothing.

    .venv/bin/python scripts/quantize_centerface.py          # about a minute on 2 cores
"""

from __future__ import annotations

import sys

import cv2
import numpy as np

from privinfer import assets
from privinfer.client.detect.centerface import INT8_RANGES, _dynamic_centerface, _round_up
from privinfer.data import corpus
from privinfer.models.onnx_session import cpu_session
from privinfer.models.quantize import calibrate


def main() -> int:
    model = _dynamic_centerface(assets.require("centerface"))
    name = cpu_session(model, threads=1).get_inputs()[0].name
    scenes = corpus.load_split(corpus.SCENES)
    # As the detector feeds a frame: resized to its sides rounded up to multiples of 32.
    images = [cv2.resize(rgb, (_round_up(rgb.shape[1]), _round_up(rgb.shape[0]))) for rgb in scenes.images]
    images += [rgb[:, ::-1] for rgb in images]
    blobs = (np.ascontiguousarray(rgb.transpose(2, 0, 1)[None], dtype=np.float32) for rgb in images)
    built = calibrate(model, blobs, name, INT8_RANGES)
    INT8_RANGES.chmod(0o644)
    print(f"{INT8_RANGES}: ranges from {len(images)} frames; int8 model {built} ({built.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
