"""Decoding inside the served graphs: a server answers with detections, not with raw anchors.

A raw answer is (anchors, 124) float32 per chunk: 1.35 MB for a 416x320 chunk, 3.5x the pixels
sent, so over a slow link the answer, not the request, set the frame's latency. ``WithDetections``
wraps any module that ends in raw outputs (the ``full``, ``patched`` and ``tail`` server parts, and
any later one) and finishes the job on the server: each side's distance is the expectation over
its 11 bins times the level's stride, boxes are clipped to the padded chunk, every (anchor, class)
pair scoring above ``score_floor`` is a candidate, class-aware NMS (ONNX NonMaxSuppression, at
the IoU the client uses, 0.6) removes the duplicates, and the ``top_k`` best are kept. The answer is
(N, K, 6) float32: x1, y1, x2, y2 in the chunk's pixels (its padded model input), score, class id
(exact as a float below 2^24). K is the largest number of candidates over the batch, at most
``top_k`` and at least 1; rows below the floor (a batch's shorter answers, or an empty one) carry
their true lower score, so a client keeps a row only when its score is above the floor.

Why the client still gets exactly what it decoded before: greedy NMS visits boxes best first, so a
box above the client's threshold is suppressed only by better boxes, all above that threshold too;
NMS over the candidates above the floor, then the client's threshold and NMS again (a no-op on
what is left), keep the same boxes as the client's threshold and NMS alone. The threshold stays on
the client: it depends on what the client asks (the task's 0.35, a face detector's weaker persons).
Without the NMS, 300 rows did not hold every candidate of a busy photo above a weak person
threshold. With at most 300 rows the answer is at most 7.2 kB; after NMS it is typically well under
1 kB. Only ONNX ops that onnxruntime and Triton's onnxruntime backend run are used (Softmax,
MatMul, Range, NonMaxSuppression, ScatterND, TopK, GatherElements), all with dynamic sizes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from privinfer.boxes import batched_nms
from privinfer.errors import ConfigError
from privinfer.models import nanodet

DETECTION_WIDTH = 6  # x1, y1, x2, y2, score, class id
SCORE_COLUMN, CLASS_COLUMN = 4, 5


@dataclass(frozen=True)
class ServedDecode:
    """What a served graph keeps: candidates scoring above ``score_floor``, the ``top_k`` best.

    The floor must stay below every threshold a client decodes with (the task's 0.35, the face
    cascade's weaker persons): a candidate under it never reaches the client.
    """

    score_floor: float = 0.05
    top_k: int = 300
    iou_threshold: float = 0.6  # the client's (``nanodet.DecodeOptions``): a box is dropped above it

    def __post_init__(self) -> None:
        if not 0 <= self.score_floor < 1:
            raise ConfigError(f"score floor {self.score_floor} must be at least 0 and below 1")
        # The smallest chunk (32x32 px) has 21 anchors, 1680 (anchor, class) pairs: TopK always has them.
        if not 1 <= self.top_k <= 21 * nanodet.NUM_CLASSES:
            raise ConfigError(f"top-k {self.top_k} must be between 1 and {21 * nanodet.NUM_CLASSES}")
        if not 0 < self.iou_threshold <= 1:
            raise ConfigError(f"NMS IoU {self.iou_threshold} must be above 0 and at most 1")


DEFAULT_DECODE = ServedDecode()


def anchor_centres(
    height: torch.Tensor, width: torch.Tensor, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Anchor centres (A, 2) as x, y and their strides (A,), for a padded input of height x width
    (multiples of 32), in the raw output's order: level by level, row by row."""
    centres, strides = [], []
    for stride in nanodet.STRIDES:
        rows, cols = height // stride, width // stride
        xs = (torch.arange(cols, dtype=torch.float32, device=device) + 0.5) * stride
        ys = (torch.arange(rows, dtype=torch.float32, device=device) + 0.5) * stride
        grid_x = xs.reshape(1, -1).expand(ys.shape[0], xs.shape[0]).reshape(-1)
        grid_y = ys.reshape(-1, 1).expand(ys.shape[0], xs.shape[0]).reshape(-1)
        centres.append(torch.stack([grid_x, grid_y], dim=1))
        strides.append(torch.ones_like(grid_x) * stride)
    return torch.cat(centres), torch.cat(strides)


def detections_from_raw(
    raw: torch.Tensor, height: torch.Tensor, width: torch.Tensor, options: ServedDecode
) -> torch.Tensor:
    """Raw outputs (N, A, 124) of a padded height x width input (sizes as 0-d tensors) -> detections (N, K, 6)."""
    centres, strides = anchor_centres(height, width, raw.device)
    n = raw.shape[0]
    scores = raw[:, :, : nanodet.NUM_CLASSES]
    logits = raw[:, :, nanodet.NUM_CLASSES :].reshape(n, -1, 4, nanodet.REG_BINS)
    bins = torch.arange(nanodet.REG_BINS, dtype=raw.dtype, device=raw.device)
    distances = torch.matmul(logits.softmax(dim=3), bins) * strides.reshape(1, -1, 1)  # (N, A, 4)
    near, far = centres.unsqueeze(0) - distances[:, :, :2], centres.unsqueeze(0) + distances[:, :, 2:]
    limits = torch.stack([width, height]).to(raw.device, raw.dtype)
    near = torch.minimum(near.clamp_min(0), limits)
    far = torch.minimum(far.clamp_min(0), limits)
    boxes = torch.cat([near, far], dim=2)  # (N, A, 4)

    # NMS per image and class; what it keeps is written back into the flat scores, all else zero.
    chosen = _ClassNms.apply(boxes, scores.transpose(1, 2), options.top_k, options.iou_threshold, options.score_floor)
    batch, label, anchor = chosen[:, 0], chosen[:, 1], chosen[:, 2]
    flat_index = anchor * nanodet.NUM_CLASSES + label
    all_scores = scores.reshape(n, -1)  # (N, A * classes): anchor-major
    flat = torch.zeros_like(all_scores).index_put((batch, flat_index), all_scores[batch, flat_index])
    count = (flat > options.score_floor).sum(dim=1).max().clamp(1, options.top_k)
    top_scores, top_index = torch.topk(flat, count.reshape(1), dim=1)
    anchor = torch.div(top_index, nanodet.NUM_CLASSES, rounding_mode="floor")
    label = top_index - anchor * nanodet.NUM_CLASSES
    top_boxes = torch.gather(boxes, 1, anchor.unsqueeze(2).expand(-1, -1, 4))
    return torch.cat([top_boxes, top_scores.unsqueeze(2), label.to(raw.dtype).unsqueeze(2)], dim=2)


class _ClassNms(torch.autograd.Function):
    """Class-aware NMS as ONNX NonMaxSuppression computes it: boxes (N, A, 4) as corners, scores
    (N, C, A); returns the kept (batch, class, anchor) triples (M, 3) int64, at most ``per_class``
    per image and class, boxes scoring above ``floor`` only. Eager: ``boxes.batched_nms``
    (the client's, torchvision's rule); exported: the ONNX op."""

    @staticmethod
    def forward(ctx, boxes, scores, per_class: int, iou: float, floor: float):  # noqa: ANN001
        kept = []
        for image in range(boxes.shape[0]):
            cls, anchor = torch.nonzero(scores[image] > floor, as_tuple=True)
            candidate_scores = scores[image, cls, anchor]
            found = (boxes[image, anchor], candidate_scores, cls)
            keep = torch.from_numpy(batched_nms(*(t.cpu().numpy() for t in found), iou)).to(cls.device)  # best first
            cls, anchor = cls[keep], anchor[keep]
            rank = torch.zeros_like(cls)  # each box's place within its class, to cap it at per_class
            for label in cls.unique():
                mine = cls == label
                rank[mine] = torch.arange(int(mine.sum()), device=cls.device)
            cls, anchor = cls[rank < per_class], anchor[rank < per_class]
            kept.append(torch.stack([torch.full_like(cls, image), cls, anchor], dim=1))
        return torch.cat(kept).long()

    @staticmethod
    def symbolic(g, boxes, scores, per_class: int, iou: float, floor: float):  # noqa: ANN001
        def constant(value, dtype):
            return g.op("Constant", value_t=torch.tensor([value], dtype=dtype))

        per_class_t, iou_t = constant(per_class, torch.int64), constant(iou, torch.float32)
        return g.op("NonMaxSuppression", boxes, scores, per_class_t, iou_t, constant(floor, torch.float32))


class WithDetections(nn.Module):
    """``inner`` (a module ending in raw outputs) followed by the decoding above.

    ``padded_size`` maps the module's inputs to the padded input's (height, width): from the
    pixels for the pixel models, from the embedding's sides times its stride for the tail.
    """

    def __init__(
        self,
        inner: nn.Module,
        padded_size: Callable[..., tuple[torch.Tensor, torch.Tensor]],
        options: ServedDecode = DEFAULT_DECODE,
    ) -> None:
        super().__init__()
        self.inner = inner
        self.padded_size = padded_size
        self.options = options

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        height, width = self.padded_size(*inputs)
        return detections_from_raw(self.inner(*inputs), height, width, self.options)


def pixels_padded_size(pixels: torch.Tensor, *_: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(height, width) of RGB pixels (N,H,W,3) padded to multiples of 32, as the server pads them."""
    multiple = nanodet.PAD_MULTIPLE
    return _side(pixels, 1, multiple), _side(pixels, 2, multiple)


def embedding_size(stride: int) -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    """(height, width) of the padded input an embedding (N,C,h,w) at 1/``stride`` came from."""

    def size(embedding: torch.Tensor, *_: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return _side(embedding, 2, 1) * stride, _side(embedding, 3, 1) * stride

    return size


def _side(tensor: torch.Tensor, axis: int, multiple: int) -> torch.Tensor:
    # A tensor: a traced export then keeps the size dynamic (tracing gives sizes as tensors already).
    side = tensor.shape[axis]
    side = side if isinstance(side, torch.Tensor) else torch.tensor(side)
    return torch.div(side + (multiple - 1), multiple, rounding_mode="floor") * multiple


def kept(detections: np.ndarray, options: ServedDecode = DEFAULT_DECODE) -> np.ndarray:
    """One chunk's answer (K, 6) without the rows at or below the floor (padding of a batch)."""
    return detections[detections[:, SCORE_COLUMN] > options.score_floor]
