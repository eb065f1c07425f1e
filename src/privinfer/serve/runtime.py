"""How a server runs its two models, by name: ``create_runtime("onnxruntime")`` or ``"torch"``.

Both take the same numpy batches and return the same detections (N, K, 6) float32 (x1, y1, x2, y2
in the chunk's pixels, score, class id; ``models.served_decode``): ``full`` on RGB uint8 chunks
(N,H,W,3) of any size (padded to multiples of 32 inside), ``tail`` on embeddings (N,C,h,w)
float16/32, ``patched`` on one chunk and its feature patch. Both run the same modules (the torch one
is what the ONNX file is exported from), and agree within ``RUNTIME_TOLERANCE`` on scores
(tests/test_onnx_runtime.py checks it on real tiles). A runtime that cannot run here (onnxruntime
asked for a GPU device it has no provider for, a failed export) falls back to eager torch, with a warning in the log.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from privinfer.errors import ConfigError, PrivinferError
from privinfer.models import nanodet
from privinfer.models.onnx_session import cpu_session
from privinfer.models.served_decode import DEFAULT_DECODE, ServedDecode
from privinfer.serve import onnx_export

log = logging.getLogger(__name__)

# Max abs difference of scores between runtimes; measured ~3e-6 on raw outputs.
RUNTIME_TOLERANCE = 1e-4
FALLBACK = "torch"


@dataclass(frozen=True)
class RuntimeOptions:
    """Where and how a runtime runs: device, the model's client/server cut, intra-op threads (None: all)."""

    device: str = "cpu"
    cut: str = nanodet.DEFAULT_CUT
    threads: int | None = None
    decode: ServedDecode = DEFAULT_DECODE


@dataclass(frozen=True)
class EmbeddingGeometry:
    """What the tail expects: ``channels`` feature maps at 1/``stride`` of the tile's side."""

    channels: int
    stride: int


class ModelRuntime(ABC):
    """Runs ``full``, ``tail`` and ``patched`` on numpy batches; returns detections (N, K, 6) float32."""

    name: ClassVar[str]
    platform: ClassVar[str]  # the Open Inference Protocol's platform string
    geometry: EmbeddingGeometry

    @abstractmethod
    def full(self, pixels: np.ndarray) -> np.ndarray:
        """RGB uint8 chunks (N,H,W,3), all one size, any size: padded to multiples of 32 inside."""

    @abstractmethod
    def tail(self, embedding: np.ndarray) -> np.ndarray:
        """Embeddings (N,C,h,w), float16 or float32."""

    @abstractmethod
    def patched(
        self, pixels: np.ndarray, patch_cells: np.ndarray, patch_channels: np.ndarray, patch_values: np.ndarray
    ) -> np.ndarray:
        """One chunk (1,H,W,3) uint8 with its sensitive regions filled, and its feature patch: flat
        cell indices (1,K) int32, the channels sent (1,k) int32 and their values (1,K,k) float16/32
        (``nanodet.PatchedPixelsToRaw``)."""

    @abstractmethod
    def repaired(self, pixels: np.ndarray, region_cells: np.ndarray) -> np.ndarray:
        """One chunk (1,H,W,3) uint8 with its sensitive regions filled, and their cells' flat indices
        (1,K) int32: repaired from their context before the tail (``repair.RepairedPixelsToRaw``)."""


class TorchRuntime(ModelRuntime):
    """Eager torch on any torch device (the reference implementation)."""

    name = "torch"
    platform = "pytorch_libtorch"

    def __init__(self, options: RuntimeOptions = RuntimeOptions()) -> None:
        if options.threads is not None:
            torch.set_num_threads(options.threads)  # process-wide: a server process runs one runtime
        self.device = torch.device(options.device)
        self.model = nanodet.load_nanodet(self.device, options.cut, share_weights=True)  # served as it is
        # The very modules the ONNX files are exported from; anchors are built on the CPU.
        self._modules = {
            part: onnx_export.served_module(part, self.model, options.decode).to(self.device)
            for part in onnx_export.SERVER_PARTS
        }
        channels, height, _ = self.model.embedding_shape(nanodet.REFERENCE_SIZE)
        self.geometry = EmbeddingGeometry(channels, nanodet.REFERENCE_SIZE // height)

    def full(self, pixels: np.ndarray) -> np.ndarray:
        return self._run("full", np.ascontiguousarray(pixels))

    def tail(self, embedding: np.ndarray) -> np.ndarray:
        return self._run("tail", np.ascontiguousarray(embedding, dtype=np.float32))

    def patched(
        self, pixels: np.ndarray, patch_cells: np.ndarray, patch_channels: np.ndarray, patch_values: np.ndarray
    ) -> np.ndarray:
        return self._run(
            "patched", *(np.ascontiguousarray(a) for a in (pixels, patch_cells, patch_channels, patch_values))
        )

    def _run(self, part: str, *arrays: np.ndarray) -> np.ndarray:
        tensors = [torch.from_numpy(a).to(self.device) for a in arrays]
        with torch.inference_mode():
            return self._modules[part](*tensors).cpu().numpy()

    def repaired(self, pixels: np.ndarray, region_cells: np.ndarray) -> np.ndarray:
        return self._run("repaired", *(np.ascontiguousarray(a) for a in (pixels, region_cells)))


class OnnxRuntime(ModelRuntime):
    """onnxruntime on the CPU, on the cached ONNX exports (exported on first use)."""

    name = "onnxruntime"
    platform = "onnxruntime_onnx"

    def __init__(self, options: RuntimeOptions = RuntimeOptions()) -> None:
        if torch.device(options.device).type != "cpu":
            raise ConfigError(f"the installed onnxruntime runs on the CPU only, not on device '{options.device}'")
        paths = {part: onnx_export.onnx_path(part, options.cut, options.decode) for part in onnx_export.SERVER_PARTS}
        if not all(path.is_file() for path in paths.values()):
            model = nanodet.load_nanodet("cpu", options.cut)  # one load for every export
            paths = {
                part: onnx_export.export_onnx(part, options.cut, model, options.decode)
                for part in onnx_export.SERVER_PARTS
            }
        # No spin-waiting between calls: on a server the gRPC threads need those cores (measured on
        # 2 busy cores: protocol overhead 8 -> 4 ms, compute 36 -> 24 ms per tail call).
        self._sessions = {part: cpu_session(path, options.threads, spinning=False) for part, path in paths.items()}
        meta = self._sessions["tail"].get_modelmeta().custom_metadata_map
        self.geometry = EmbeddingGeometry(int(meta[onnx_export.META_CHANNELS]), int(meta[onnx_export.META_STRIDE]))

    def full(self, pixels: np.ndarray) -> np.ndarray:
        return self._run("full", np.ascontiguousarray(pixels, dtype=np.uint8))

    def tail(self, embedding: np.ndarray) -> np.ndarray:
        return self._run("tail", np.ascontiguousarray(embedding, dtype=np.float32))

    def patched(
        self, pixels: np.ndarray, patch_cells: np.ndarray, patch_channels: np.ndarray, patch_values: np.ndarray
    ) -> np.ndarray:
        arrays = (
            np.ascontiguousarray(pixels, dtype=np.uint8),
            np.ascontiguousarray(patch_cells, dtype=np.int32),
            np.ascontiguousarray(patch_channels, dtype=np.int32),
            np.ascontiguousarray(patch_values, dtype=np.float32),
        )
        return self._run("patched", *arrays)

    def repaired(self, pixels: np.ndarray, region_cells: np.ndarray) -> np.ndarray:
        cells = np.ascontiguousarray(region_cells, dtype=np.int32)
        return self._run("repaired", np.ascontiguousarray(pixels, dtype=np.uint8), cells)

    def _run(self, part: str, *arrays: np.ndarray) -> np.ndarray:
        feed = dict(zip(onnx_export.input_names(part), arrays, strict=True))
        return self._sessions[part].run([onnx_export.OUTPUT_NAME], feed)[0]


RUNTIMES: dict[str, Callable[[RuntimeOptions], ModelRuntime]] = {"onnxruntime": OnnxRuntime, "torch": TorchRuntime}


def create_runtime(name: str, options: RuntimeOptions = RuntimeOptions()) -> ModelRuntime:
    """The runtime called ``name``; falls back to eager torch when it cannot run here.

    Raises:
        ConfigError: an unknown runtime name or device, or an unknown cut.
        AssetMissingError: the NanoDet assets are not fetched.
    """
    if name not in RUNTIMES:
        raise ConfigError(f"unknown model runtime '{name}'; choose from: {', '.join(sorted(RUNTIMES))}")
    try:
        return RUNTIMES[name](options)
    except PrivinferError as error:
        if name == FALLBACK:
            raise
        log.warning("runtime %s is unavailable (%s); falling back to eager %s", name, error, FALLBACK)
        return RUNTIMES[FALLBACK](options)
