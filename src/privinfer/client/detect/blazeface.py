"""BlazeFace faces (MediaPipe's detector, keijiro's ONNX export) with its SSD anchor decoding.

Fast because the whole image is letterboxed into one 128 px (or 256 px) square: a face must
cover a good part of the frame to be seen. The front model is MediaPipe's short-range (selfie)
detector; the back model sees somewhat smaller faces. Use `faces` (CenterFace) when faces may be
small.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from privinfer import assets
from privinfer.boxes import nms, weighted_nms
from privinfer.client.detect import register
from privinfer.client.detect.base import DetectorOptions, SensitiveDetector, boxes_from_xyxy
from privinfer.errors import ConfigError
from privinfer.models.letterbox import letterbox
from privinfer.models.onnx_session import cpu_session
from privinfer.types import Detection

_NMS_IOU = 0.3  # MediaPipe's min_suppression_threshold
_SCORE_CLIP = 100.0  # MediaPipe's score_clipping_thresh: logits are clipped before the sigmoid
# Output names in the order the anchors are laid out (keijiro's FaceDetector.cs pairs them so).
_SCORE_OUTPUTS = ("Identity:0", "Identity_1:0")
_REGRESSOR_OUTPUTS = ("Identity_2:0", "Identity_3:0")


@dataclass(frozen=True)
class BlazeFaceModel:
    """One BlazeFace network: its asset, square input side and MediaPipe anchor strides."""

    asset: str
    size: int
    strides: tuple[int, ...]


MODELS = {
    "front": BlazeFaceModel("blazeface-front", 128, (8, 16, 16, 16)),
    "back": BlazeFaceModel("blazeface-back", 256, (16, 32, 32, 32)),
}


@register("faces-fast")
class BlazeFaceDetector(SensitiveDetector):
    """BlazeFace on a letterboxed square, SSD anchors, blended (MediaPipe) or plain NMS.

    model: "front" (128 px, short range, default) or "back" (256 px, farther faces).
    weighted: blend overlapping boxes weighted by score as MediaPipe does; False keeps the best.
    threads: onnxruntime intra-op threads; None uses every core.
    """

    labels = ("face",)

    def __init__(
        self,
        options: DetectorOptions | None = None,
        model: str = "front",
        weighted: bool = True,
        threads: int | None = None,
    ) -> None:
        super().__init__(options)
        if model not in MODELS:
            raise ConfigError(f"faces-fast: unknown model '{model}'; choose from: {', '.join(MODELS)}")
        self.model = MODELS[model]
        self.weighted = weighted
        self._anchors = anchor_centres(self.model.size, self.model.strides)
        self._session = cpu_session(assets.require(self.model.asset), threads)
        self._input_name = self._session.get_inputs()[0].name

    def detect_raw(self, rgb: np.ndarray) -> list[Detection]:
        # MediaPipe keeps the aspect ratio by padding with black (keep_aspect_ratio, border zero).
        square, placement = letterbox(rgb, self.model.size)
        # MediaPipe feeds RGB scaled to [-1, 1]; the export is NHWC with no normalisation inside.
        blob = (square.astype(np.float32) / 127.5 - 1.0)[None]
        outputs = self._session.run([*_SCORE_OUTPUTS, *_REGRESSOR_OUTPUTS], {self._input_name: blob})
        logits = np.concatenate([out[0, :, 0] for out in outputs[:2]]).astype(np.float64)
        regressors = np.concatenate([out[0] for out in outputs[2:]])
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -_SCORE_CLIP, _SCORE_CLIP)))
        # MediaPipe also thresholds before suppression, so low scores never enter a blend.
        candidates = scores >= self.threshold
        boxes = decode(regressors[candidates], self._anchors[candidates], self.model.size)
        scores = scores[candidates]
        if self.weighted:
            boxes, scores = weighted_nms(boxes, scores, _NMS_IOU)
        else:
            keep = nms(boxes, scores, _NMS_IOU)
            boxes, scores = boxes[keep], scores[keep]
        return boxes_from_xyxy(placement.to_image(boxes * self.model.size), scores, "face")


def anchor_centres(size: int, strides: tuple[int, ...], anchors_per_layer: int = 2) -> np.ndarray:
    """MediaPipe SSD anchor centres (fixed_anchor_size: all anchors are 1x1), (N, 2) x, y in [0, 1].

    Consecutive layers with the same stride share one grid, each adding `anchors_per_layer`
    anchors per cell; anchors are ordered grid by grid, row-major, anchors innermost.
    """
    grids = []
    layer = 0
    while layer < len(strides):
        stride, per_cell = strides[layer], 0
        while layer < len(strides) and strides[layer] == stride:
            per_cell += anchors_per_layer
            layer += 1
        cells = int(np.ceil(size / stride))
        rows, cols = np.mgrid[0:cells, 0:cells]
        centres = np.stack([(cols + 0.5) / cells, (rows + 0.5) / cells], axis=-1).reshape(-1, 2)
        grids.append(np.repeat(centres, per_cell, axis=0))
    return np.concatenate(grids)


def decode(regressors: np.ndarray, anchors: np.ndarray, size: int) -> np.ndarray:
    """(N, 16) regressors (centre dx, dy, w, h in input pixels, then 6 key points) → (N, 4) x1, y1, x2, y2 in [0, 1]."""
    centres = anchors + regressors[:, :2] / size
    half = regressors[:, 2:4] / size / 2
    return np.concatenate([centres - half, centres + half], axis=1).astype(np.float64)
