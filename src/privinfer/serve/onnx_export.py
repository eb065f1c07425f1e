"""The task model's parts as ONNX files, exported once and cached.

``full`` (what a server runs on pixels) takes the chunk's RGB uint8 pixels (N,H,W,3) of any size:
padding to multiples of 32 and normalisation are inside the graph (``nanodet.PixelsToRaw``), so an
engine such as Triton serves it with no pre-processing of its own. ``head`` (what the client runs
on sensitive chunks before obfuscating them) takes the *normalised* float input (N,3,H,W), sides
multiples of 32 (``nanodet.normalise_array``). ``tail`` takes the embedding (N,C,h,w) float32.
Batch and spatial sizes are dynamic. The server parts (``full``, ``patched``, ``tail``) end in
the decoding (``served_decode.WithDetections``, applied here to every part that has a
``padded_size``, so a new server part gets it by its table entry): they output ``detections``
(N, K, 6) float32, a few kB, not the raw (N, anchors, 124); ``head`` outputs the embedding.

Files live under ``cache_dir()/onnx/``, named by part, cut, a hash of the model assets and this
exporter's version, so a changed model or export never reuses a stale file. The cut's channels
and stride are stored in the file's metadata for servers that read it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch
from torch import nn

from privinfer import assets
from privinfer.errors import ConfigError, ModelExportError
from privinfer.models import nanodet
from privinfer.models.served_decode import (
    DEFAULT_DECODE,
    ServedDecode,
    WithDetections,
    embedding_size,
    pixels_padded_size,
)

EXPORT_VERSION = 5  # bump whenever the exported graph would change
OPSET = 17
OUTPUT_NAME = "detections"  # the servers' parts
EMBEDDING_OUTPUT_NAME = "embedding"  # the client's head
# Metadata keys in every exported file (read back with onnxruntime's custom_metadata_map).
META_CUT, META_CHANNELS, META_STRIDE = "privinfer.cut", "privinfer.embedding_channels", "privinfer.embedding_stride"
META_FLOOR, META_TOP_K = "privinfer.score_floor", "privinfer.top_k"  # server parts: what their answer keeps
_SAMPLE_SIZE = 256  # any multiple of 32: the exported sizes are dynamic


Axes = tuple[tuple[int, str], ...]
PIXEL_AXES: Axes = ((0, "batch"), (1, "height"), (2, "width"))
NCHW_AXES: Axes = ((0, "batch"), (2, "height"), (3, "width"))


SizeOf = Callable[..., tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class _Part:
    """One exported graph: its inputs (name -> dynamic axes), the module and a sample input per input.

    ``padded_size`` (given the model, a function of the part's inputs giving the padded input's
    height and width) marks a server part: the export ends it in the decoding to detections.
    """

    inputs: tuple[tuple[str, Axes], ...]
    module: Callable[[nanodet.NanoDet], nn.Module]
    sample: Callable[[nanodet.NanoDet], tuple[torch.Tensor, ...]]
    output_name: str = OUTPUT_NAME
    output_axes: Axes = ((0, "batch"), (1, "detections"))
    padded_size: Callable[[nanodet.NanoDet], SizeOf] | None = None


def _normalised_sample(model: nanodet.NanoDet) -> tuple[torch.Tensor, ...]:
    return (torch.zeros(1, 3, _SAMPLE_SIZE, _SAMPLE_SIZE),)


def _pixels(model: nanodet.NanoDet) -> torch.Tensor:
    # Sides that are not multiples of 32, so that the padding is traced as the shape-dependent op it is.
    return torch.zeros(1, _SAMPLE_SIZE - 13, _SAMPLE_SIZE - 7, 3, dtype=torch.uint8)


def _pixels_sample(model: nanodet.NanoDet) -> tuple[torch.Tensor, ...]:
    return (_pixels(model),)


def _patched_sample(model: nanodet.NanoDet) -> tuple[torch.Tensor, ...]:
    # Three cells, two of the embedding's channels sent: both counts are dynamic in the graph.
    cells, sent = torch.tensor([[3, 4, 40]], dtype=torch.int32), torch.tensor([[0, 5]], dtype=torch.int32)
    return _pixels(model), cells, sent, torch.zeros(1, 3, 2)


def _repaired_sample(model: nanodet.NanoDet) -> tuple[torch.Tensor, ...]:
    # Three region cells: their count is dynamic in the graph.
    return _pixels(model), torch.tensor([[3, 4, 40]], dtype=torch.int32)


def _repaired_module(model: nanodet.NanoDet) -> nn.Module:
    from privinfer.models.repair import RepairedPixelsToRaw

    return RepairedPixelsToRaw(model)


def _embedding_sample(model: nanodet.NanoDet) -> tuple[torch.Tensor, ...]:
    return (torch.zeros(1, *model.embedding_shape(_SAMPLE_SIZE)),)


def _pixels_size(model: nanodet.NanoDet) -> SizeOf:
    return pixels_padded_size


def _embedding_size(model: nanodet.NanoDet) -> SizeOf:
    _, rows, _ = model.embedding_shape(nanodet.REFERENCE_SIZE)
    return embedding_size(nanodet.REFERENCE_SIZE // rows)


def served_module(part: str, model: nanodet.NanoDet, decode: ServedDecode = DEFAULT_DECODE) -> nn.Module:
    """The torch module the ONNX file of ``part`` is exported from: for a server part, its raw
    module ended in the decoding (what the torch runtime runs too, so both answer alike)."""
    spec = _part(part)
    module = spec.module(model)
    if spec.padded_size is None:
        return module
    return WithDetections(module, spec.padded_size(model), decode)


PARTS: dict[str, _Part] = {
    "full": _Part((("pixels", PIXEL_AXES),), nanodet.PixelsToRaw, _pixels_sample, padded_size=_pixels_size),
    "tail": _Part((("embedding", NCHW_AXES),), nanodet.NanoDetTail, _embedding_sample, padded_size=_embedding_size),
    "patched": _Part(
        (
            ("pixels", PIXEL_AXES),
            ("patch_cells", ((0, "batch"), (1, "cells"))),
            ("patch_channels", ((0, "batch"), (1, "sent"))),
            ("patch_values", ((0, "batch"), (1, "cells"), (2, "sent"))),
        ),
        nanodet.PatchedPixelsToRaw,
        _patched_sample,
        padded_size=_pixels_size,
    ),
    "repaired": _Part(
        (("pixels", PIXEL_AXES), ("region_cells", ((0, "batch"), (1, "cells")))),
        _repaired_module,
        _repaired_sample,
        padded_size=_pixels_size,
    ),
    "head": _Part(
        (("input", NCHW_AXES),),
        nanodet.NanoDetHead,
        _normalised_sample,
        EMBEDDING_OUTPUT_NAME,
        ((0, "batch"), (2, "h"), (3, "w")),
    ),  # fmt: skip
}
SERVER_PARTS = ("full", "tail", "patched", "repaired")  # what a server runs; the head stays on the client


def output_name(part: str) -> str:
    """The ONNX output name of ``part``: 'detections' for the servers' parts, 'embedding' for the head."""
    return _part(part).output_name


def input_names(part: str) -> tuple[str, ...]:
    """The ONNX input names of ``part``: 'pixels' (uint8) for full, 'input' (normalised) for head,
    'embedding' for tail, pixels plus 'patch_cells' and 'patch_values' for patched, pixels plus
    'region_cells' for repaired."""
    return tuple(name for name, _ in _part(part).inputs)


def input_name(part: str) -> str:
    """The one ONNX input name of a single-input ``part``."""
    (name,) = input_names(part)
    return name


def onnx_path(part: str, cut: str = nanodet.DEFAULT_CUT, decode: ServedDecode = DEFAULT_DECODE) -> Path:
    """Where the cached export of ``part`` at ``cut`` lives (it may not exist yet); a server part's
    name also carries a decoding that is not the default."""
    spec = _part(part)
    hashes = "".join(assets.ASSETS[name].sha256 for name in ("nanodet-graph", "nanodet-weights"))
    if part == "repaired":  # its repair network's weights are part of the graph
        from privinfer.models.repair import SHIPPED

        hashes += hashlib.sha256(SHIPPED.read_bytes()).hexdigest() if SHIPPED.is_file() else "untrained"
    digest = hashlib.sha256(hashes.encode()).hexdigest()[:12]
    tag = ""
    if spec.padded_size is not None and decode != DEFAULT_DECODE:
        tag = f"-floor{decode.score_floor:g}-top{decode.top_k}"
    return assets.cache_dir() / "onnx" / f"nanodet-{part}-{cut}{tag}-{digest}-v{EXPORT_VERSION}.onnx"


def export_onnx(
    part: str,
    cut: str = nanodet.DEFAULT_CUT,
    model: nanodet.NanoDet | None = None,
    decode: ServedDecode = DEFAULT_DECODE,
) -> Path:
    """The ONNX file of ``part`` ('full', 'tail', 'patched' or 'head') at ``cut``: exported on first
    use, then cached. A server part ends in the decoding ``decode`` (score floor, top-k).

    ``model`` is an already loaded NanoDet split at ``cut`` (loaded on the CPU when None and needed).

    Raises:
        ConfigError: an unknown part or cut.
        AssetMissingError: the NanoDet assets are not fetched.
        ModelExportError: torch could not export the model, or the file could not be written.
    """
    path = onnx_path(part, cut, decode)
    if path.is_file():
        return path
    spec = _part(part)
    source = model if model is not None else nanodet.load_nanodet("cpu", cut)
    if source.cut != cut:
        raise ModelExportError(f"cannot export cut '{cut}' from a model split at '{source.cut}'")
    channels, height, _ = source.embedding_shape(nanodet.REFERENCE_SIZE)
    metadata = {META_CUT: cut, META_CHANNELS: str(channels), META_STRIDE: str(nanodet.REFERENCE_SIZE // height)}
    if spec.padded_size is not None:
        metadata |= {META_FLOOR: f"{decode.score_floor:g}", META_TOP_K: str(decode.top_k)}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written next to its final name, then renamed: concurrent servers never read half a file.
        handle, name = tempfile.mkstemp(suffix=".onnx.part", dir=path.parent)
    except OSError as error:
        raise ModelExportError(f"cannot write ONNX exports under {path.parent}: {error.strerror}") from error
    os.close(handle)
    temporary = Path(name)
    try:
        _export(source, part, decode, temporary, metadata)
        temporary.chmod(0o644)  # mkstemp makes it private; the cache is shared like the other assets
        os.replace(temporary, path)
    except (OSError, RuntimeError, ValueError, TypeError) as error:
        temporary.unlink(missing_ok=True)
        raise ModelExportError(f"exporting NanoDet '{part}' (cut {cut}) to {path} failed: {error}") from error
    return path


def _export(model: nanodet.NanoDet, part: str, decode: ServedDecode, target: Path, metadata: dict[str, str]) -> None:
    """Export on the CPU (the file is device-independent), then add the metadata."""
    spec = _part(part)
    device = next(model.parameters()).device
    try:
        with warnings.catch_warnings(), torch.no_grad():
            # The TorchScript exporter handles this graph; the torch.export-based one needs onnxscript.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                served_module(part, model.to("cpu"), decode),
                spec.sample(model),
                str(target),
                input_names=[name for name, _ in spec.inputs],
                output_names=[spec.output_name],
                dynamic_axes={**{n: dict(a) for n, a in spec.inputs}, spec.output_name: dict(spec.output_axes)},
                opset_version=OPSET,
                dynamo=False,
            )
    finally:
        model.to(device)
    exported = onnx.load(str(target))
    onnx.helper.set_model_props(exported, metadata)
    onnx.save(exported, str(target))


def _part(part: str) -> _Part:
    try:
        return PARTS[part]
    except KeyError:
        raise ConfigError(f"no ONNX export for model part '{part}'; choose from: {', '.join(PARTS)}") from None
