"""NanoDet (COCO, 80 classes) as a split-able PyTorch module.

``head(x) -> z`` runs on the client up to a named cut point (default: the end of the stride-8
backbone stage, 128 channels at 1/8 resolution); ``tail(z)`` runs on a server and returns the raw
outputs; ``tail(head(x))`` equals ``full(x)`` exactly because both run the same compiled steps.
Pre-processing (resize, padding, BGR mean/std) and post-processing (distance-bin decoding,
class-aware NMS, boxes back in image pixels) live here too, shared by every caller.

Inputs need not be square: the network is fully convolutional, so an image of any size is padded
at its bottom and right to a multiple of ``PAD_MULTIPLE`` (the coarsest stride) with black pixels
and run as it is. A chunk cut from a frame at a multiple of 32 then sees the very sampling grid
the whole frame sees, and a letterbox's square padding (a third more pixels on a 4:3 frame) is
not computed at all.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from privinfer import assets
from privinfer.boxes import batched_nms
from privinfer.errors import ConfigError
from privinfer.models.coco import COCO_CLASSES
from privinfer.models.graph_module import Calibration, GraphModule
from privinfer.models.letterbox import Letterbox
from privinfer.models.tfjs_graph import read_tfjs_graph
from privinfer.types import Box, Detection

STRIDES = (8, 16, 32)
NUM_CLASSES = len(COCO_CLASSES)
PERSON_CLASS = COCO_CLASSES.index("person")
REG_BINS = 11  # distance bins per box side (reg_max + 1)
RAW_WIDTH = NUM_CLASSES + 4 * REG_BINS  # per anchor: 80 class scores, then 4 x 11 distance logits
REFERENCE_SIZE = 416
# The graph was exported from a BGR model normalised with these (per B, G, R channel).
MEAN_BGR = (103.53, 116.28, 123.675)
STD_BGR = (57.375, 57.12, 58.395)
DEFAULT_CUT = "stride8"
EMBEDDING_CHANNELS = 128  # channels of z = head(x) at the default cut
PAD_MULTIPLE = 32  # every input side is padded up to a multiple of the coarsest stride


@dataclass(frozen=True)
class DecodeOptions:
    """Post-processing knobs: NanoDet's own demo uses 0.35 / 0.6."""

    score_threshold: float = 0.35
    iou_threshold: float = 0.6
    max_detections: int = 100
    # Persons are also kept down to this score when set (the face cascade searches their heads).
    person_score_threshold: float | None = None


class NanoDet(nn.Module):
    """The NanoDet graph compiled to torch, with a configurable client/server cut.

    Args:
        graph: the compiled graph (see ``load_nanodet``).
        cut: a stage name from ``cut_points()`` (e.g. ``stride4``, ``stride8``) or a graph node name.
    """

    def __init__(self, graph: GraphModule, cut: str = DEFAULT_CUT) -> None:
        super().__init__()
        self.graph = graph
        self._cut_points = self._name_cut_points()
        self.set_cut(cut)
        shapes = [graph.shapes[k] for k in graph.output_keys]
        order = sorted(range(len(shapes)), key=lambda i: (shapes[i][-1] != NUM_CLASSES, -shapes[i][1]))
        self._cls_outputs = [graph.output_keys[i] for i in order[: len(STRIDES)]]
        self._reg_outputs = [graph.output_keys[i] for i in order[len(STRIDES) :]]

    def _name_cut_points(self) -> dict[str, int]:
        named: dict[str, int] = {}
        for index in self.graph.valid_cuts():
            step = self.graph.steps[index]
            shape = self.graph.shapes[step.outputs[0]]
            named[step.name] = index
            named[f"stride{REFERENCE_SIZE // shape[-1]}"] = index  # later cuts at a stride win: stage ends
        return named

    def cut_points(self) -> dict[str, int]:
        """Names accepted by ``set_cut``: stage names and graph node names, with their step index."""
        return dict(self._cut_points)

    def set_cut(self, cut: str) -> None:
        """Move the client/server split. Raises ConfigError for an unknown cut name."""
        if cut not in self._cut_points:
            stages = sorted(k for k in self._cut_points if k.startswith("stride"))
            raise ConfigError(f"unknown cut point '{cut}'; choose a stage ({', '.join(stages)}) or a graph node name")
        self.cut = cut
        self._cut_index = self._cut_points[cut]
        self._cut_key = self.graph.steps[self._cut_index].outputs[0]

    def embedding_shape(self, input_size: int) -> tuple[int, int, int]:
        """(C, H, W) of z for a square input of ``input_size`` pixels."""
        c, h, _ = self.graph.shapes[self._cut_key][1:]
        stride = REFERENCE_SIZE // h
        return (c, input_size // stride, input_size // stride)

    def head(self, x: torch.Tensor) -> torch.Tensor:
        """Client side: normalised input (N,3,S,S), S a multiple of 32 -> embedding z."""
        env = self.graph.run_range({self.graph.input_key: x}, 0, self._cut_index + 1)
        return env[self._cut_key]

    def tail(self, z: torch.Tensor) -> torch.Tensor:
        """Server side: embedding -> raw outputs (N, anchors, 124)."""
        env = self.graph.run_range({self._cut_key: z}, self._cut_index + 1, len(self.graph.steps))
        return self._assemble(env)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The whole model: normalised input -> raw outputs (N, anchors, 124)."""
        return self._assemble(self.graph.run_range({self.graph.input_key: x}, 0, len(self.graph.steps)))

    full = forward

    def _assemble(self, env: dict[str, torch.Tensor]) -> torch.Tensor:
        cls = torch.cat([env[k] for k in self._cls_outputs], dim=1)
        reg = torch.cat([env[k] for k in self._reg_outputs], dim=1)
        return torch.cat([cls, reg], dim=2)


class NanoDetHead(nn.Module):
    """``model.head`` as a module of its own (for export and for client-side obfuscators)."""

    def __init__(self, model: NanoDet) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.head(x)


class NanoDetTail(nn.Module):
    """``model.tail`` as a module of its own (what a server runs on embeddings)."""

    def __init__(self, model: NanoDet) -> None:
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model.tail(z)


class PixelsToRaw(nn.Module):
    """What a server runs on pixels: RGB uint8 (N,H,W,3) of any size -> raw outputs (N, anchors, 124).

    Padding (black, bottom and right, up to multiples of ``PAD_MULTIPLE``) and normalisation are
    inside the module, so its ONNX export needs no pre-processing outside the graph and the client
    sends exactly the chunk's pixels.
    """

    def __init__(self, model: NanoDet) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(MEAN_BGR).view(1, 1, 1, 3), persistent=False)
        self.register_buffer("std", torch.tensor(STD_BGR).view(1, 1, 1, 3), persistent=False)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.full(self.prepared(pixels))

    def prepared(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 NHWC pixels -> the padded, normalised NCHW input."""
        height, width = pixels.shape[1], pixels.shape[2]
        x = pixels.float()
        # Padded as pixels, before normalising, so the padding is what a black pixel normalises to.
        x = F.pad(x, (0, 0, 0, (-width) % PAD_MULTIPLE, 0, (-height) % PAD_MULTIPLE))
        bgr = torch.flip(x, dims=[3])
        return ((bgr - self.mean) / self.std).permute(0, 3, 1, 2)


class PatchedPixelsToRaw(PixelsToRaw):
    """What a server runs on a chunk whose sensitive regions were filled and whose feature patch came
    along: its head on the filled pixels, the patch written into the cells it names, its tail.

    pixels: RGB uint8 (1,H,W,3); patch_cells: (1,K) int32 flat cell indices of the padded chunk's
    embedding grid (row * cells per row + column); patch_channels: (1,k) int32, the channels sent;
    patch_values: (1,K,k) float16/32. Channels not sent are zero in the patch cells. One chunk per
    call: chunks differ in size and in their number of patch cells.
    """

    def forward(
        self, pixels: torch.Tensor, patch_cells: torch.Tensor, patch_channels: torch.Tensor, patch_values: torch.Tensor
    ) -> torch.Tensor:
        z = self.model.head(self.prepared(pixels))
        n, channels, rows, cols = z.shape
        sent = patch_values[0].to(z.dtype).transpose(0, 1)  # (k, K)
        dense = torch.zeros(channels, sent.shape[1], dtype=z.dtype, device=z.device)
        dense = dense.index_put((patch_channels[0].long(),), sent)  # (C, K), zero where not sent
        cells = z.reshape(n, channels, rows * cols).transpose(1, 2)  # (1, cells, C)
        batch = torch.zeros_like(patch_cells[0]).long()
        cells = cells.index_put((batch, patch_cells[0].long()), dense.transpose(0, 1))
        return self.model.tail(cells.transpose(1, 2).reshape(n, channels, rows, cols))


@lru_cache(maxsize=1)
def _compiled_graph() -> GraphModule:
    graph = read_tfjs_graph(assets.require("nanodet-graph"), assets.require("nanodet-weights").parent)
    saved = _calibration_file()
    try:
        calibration = Calibration.from_json(saved.read_text())
    except (OSError, ValueError, KeyError, TypeError):  # none saved yet, or not one: run it
        calibration = None
    module = GraphModule(graph, (1, 3, REFERENCE_SIZE, REFERENCE_SIZE), calibration)
    if calibration != module.calibration:
        with suppress(OSError):  # a read-only cache only costs the next start the run again
            saved.parent.mkdir(parents=True, exist_ok=True)
            saved.write_text(module.calibration.to_json())
    return module


def _calibration_file() -> Path:
    """Where the graph's calibration is kept: in the cache, named by the pinned hashes of the
    graph and its weights and the reference size, so that other assets never reuse it."""
    graph, weights = (assets.ASSETS[name].sha256[:16] for name in ("nanodet-graph", "nanodet-weights"))
    return assets.cache_dir() / "calibration" / f"nanodet-{graph}-{weights}-{REFERENCE_SIZE}.json"


def load_nanodet(device: str | torch.device = "cpu", cut: str = DEFAULT_CUT, share_weights: bool = False) -> NanoDet:
    """Build NanoDet from the cached TF.js assets on ``device``, in eval mode, weights frozen.

    ``share_weights``: on the CPU, every model loaded so asks holds the same weight tensors (one
    copy in memory, none to make: the client and its local servers each load the model at start).
    Only for models used as they are: one whose weights are trained must be loaded without it.

    Raises:
        AssetMissingError: the model assets are not fetched yet.
        ConfigError: unknown cut name.
    """
    import copy

    graph = _compiled_graph()
    shared = share_weights and torch.device(device).type == "cpu"  # .to(another device) would move them for all
    memo = {id(t): t for t in (*graph.parameters(), *graph.buffers())} if shared else {}
    model = NanoDet(copy.deepcopy(graph, memo), cut)
    return model.to(device).eval()


def normalise(rgb: np.ndarray | list[np.ndarray], device: str | torch.device = "cpu") -> torch.Tensor:
    """RGB uint8 HxWx3 image(s), all one size -> the model's input tensor (N,3,H,W), BGR mean/std-normalised."""
    batch = np.stack(rgb) if isinstance(rgb, list) else rgb[None]
    tensor = torch.from_numpy(np.ascontiguousarray(batch[..., ::-1])).to(device)
    tensor = tensor.permute(0, 3, 1, 2).float()
    mean = torch.tensor(MEAN_BGR, device=tensor.device).view(1, 3, 1, 1)
    std = torch.tensor(STD_BGR, device=tensor.device).view(1, 3, 1, 1)
    return (tensor - mean) / std


def normalise_array(rgb: np.ndarray) -> np.ndarray:
    """RGB uint8 (N,H,W,3) -> float32 (N,3,H,W): ``normalise`` in numpy, the same numbers bit for bit."""
    bgr = np.ascontiguousarray(rgb[..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32)
    mean = np.asarray(MEAN_BGR, dtype=np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(STD_BGR, dtype=np.float32).reshape(1, 3, 1, 1)
    return (bgr - mean) / std


def padded_side(side: int) -> int:
    """``side`` rounded up to a multiple of ``PAD_MULTIPLE``: the side the model really computes."""
    return PAD_MULTIPLE * -(-int(side) // PAD_MULTIPLE)


def pad_pixels(rgb: np.ndarray) -> np.ndarray:
    """RGB uint8 (H,W,3) or (N,H,W,3) padded with black at the bottom and right to multiples of
    ``PAD_MULTIPLE`` (what ``PixelsToRaw`` does on a server); itself when already there."""
    height, width = rgb.shape[-3], rgb.shape[-2]
    pad_h, pad_w = padded_side(height) - height, padded_side(width) - width
    if not pad_h and not pad_w:
        return rgb
    widths = [(0, 0)] * (rgb.ndim - 3) + [(0, pad_h), (0, pad_w), (0, 0)]
    return np.pad(rgb, widths)


def check_input_size(input_size: int) -> int:
    if input_size < 32 or input_size % 32:
        raise ConfigError(f"model input size {input_size} must be a positive multiple of 32")
    return input_size


def fit_long_side(rgb: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """``rgb`` resized (aspect kept, area averaging when shrinking) so its long side is ``size``,
    and the scale applied; the image itself (scale 1) when it already is."""
    height, width = rgb.shape[:2]
    scale = size / max(height, width)
    if scale == 1:
        return rgb, 1.0
    new_size = max(1, round(width * scale)), max(1, round(height * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(rgb, new_size, interpolation=interpolation), scale


def prepare(rgb: np.ndarray, input_size: int = REFERENCE_SIZE, device: str | torch.device = "cpu"):
    """Resize one image so its long side is ``input_size``, pad it to multiples of 32 and normalise.

    Returns (input tensor (1,3,H,W), the Letterbox that maps boxes back: its scale, no offset).
    """
    resized, scale = fit_long_side(rgb, check_input_size(input_size))
    return normalise(pad_pixels(resized), device), Letterbox(scale, 0, 0, input_size)


def _anchor_grid(height: int, width: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    centres, strides = [], []
    for stride in STRIDES:
        rows, cols = -(-height // stride), -(-width // stride)
        ys, xs = torch.meshgrid(torch.arange(rows, device=device), torch.arange(cols, device=device), indexing="ij")
        centres.append(torch.stack([(xs.flatten() + 0.5) * stride, (ys.flatten() + 0.5) * stride], dim=1))
        strides.append(torch.full((rows * cols,), float(stride), device=device))
    return torch.cat(centres), torch.cat(strides)


def anchor_count(height: int, width: int) -> int:
    """Anchors in the raw output of an input of height x width (both multiples of 32)."""
    return sum(-(-height // s) * -(-width // s) for s in STRIDES)


def decode(
    raw: torch.Tensor, input_size: int | tuple[int, int], options: DecodeOptions = DecodeOptions()
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Raw outputs (N, anchors, 124) -> per image (boxes (K,4) in model-input pixels, scores, class ids).

    ``input_size`` is the padded input's side, or its (height, width). Each side's distance is the
    expectation over 11 bins (softmax), times the level's stride.
    """
    height, width = (input_size, input_size) if isinstance(input_size, int) else input_size
    centres, strides = _anchor_grid(height, width, raw.device)
    if centres.shape[0] != raw.shape[1]:
        raise ConfigError(
            f"raw output has {raw.shape[1]} anchors, expected {centres.shape[0]} for a {width}x{height} px input"
        )
    bins = torch.arange(REG_BINS, dtype=raw.dtype, device=raw.device)
    limits = torch.tensor([width, height, width, height], dtype=raw.dtype, device=raw.device)
    results = []
    for sample in raw.detach():
        scores = sample[:, :NUM_CLASSES]
        distances = sample[:, NUM_CLASSES:].reshape(-1, 4, REG_BINS).softmax(dim=2) @ bins * strides[:, None]
        boxes = torch.cat([centres - distances[:, :2], centres + distances[:, 2:]], dim=1)
        boxes = torch.minimum(boxes.clamp_min(0), limits)
        wanted = scores > options.score_threshold
        if options.person_score_threshold is not None:
            wanted[:, PERSON_CLASS] |= scores[:, PERSON_CLASS] > options.person_score_threshold
        anchor, cls = torch.nonzero(wanted, as_tuple=True)
        results.append(select(boxes[anchor], scores[anchor, cls], cls, options))
    return results


def select(
    boxes: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor, options: DecodeOptions = DecodeOptions()
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidate detections (boxes (K,4), scores (K,), class ids (K,)) -> those above the
    thresholds after class-aware NMS, best first, at most ``max_detections``: the last step of
    ``decode``, and all a client does to a server's answer (``served_decode``)."""
    wanted = scores > options.score_threshold
    if options.person_score_threshold is not None:
        wanted |= (classes == PERSON_CLASS) & (scores > options.person_score_threshold)
    boxes, scores, classes = (t[wanted].cpu().numpy() for t in (boxes, scores, classes))
    keep = batched_nms(boxes, scores, classes, options.iou_threshold)[: options.max_detections]
    return boxes[keep], scores[keep], classes[keep]


def to_detections(
    boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, transform: Letterbox, width: int, height: int
) -> list[Detection]:
    """Decoded outputs in model-input pixels -> Detections in original-image pixels."""
    mapped = transform.to_image(boxes) if len(boxes) else boxes
    return [
        Detection(Box(*map(float, b)).clipped(width, height), COCO_CLASSES[int(c)], float(s))
        for b, s, c in zip(mapped, scores, classes, strict=True)
    ]


@torch.no_grad()
def detect(
    model: NanoDet, rgb: np.ndarray, input_size: int = REFERENCE_SIZE, options: DecodeOptions = DecodeOptions()
) -> list[Detection]:
    """Run the whole model on one RGB image and return its detections in image pixels."""
    device = next(model.parameters()).device
    x, transform = prepare(rgb, input_size, device)
    boxes, scores, classes = decode(model(x), tuple(x.shape[2:]), options)[0]
    return to_detections(boxes, scores, classes, transform, rgb.shape[1], rgb.shape[0])
