"""The client's half of the split model: letterboxed sensitive tiles -> embeddings z = head(tile).

This runs on the phone for every privatized tile, so it is the bulk of what obfuscation costs the
client. Two runtimes compute the same numbers (within ``HEAD_TOLERANCE``): onnxruntime on the
cached ONNX export of the head (the default on a CPU: about half of eager torch's time, measured
5.6 vs 13.9 ms for one 256 px tile on one core), and eager torch, which runs on any torch device
and is what training and the white-box attack differentiate through.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np
import torch

from privinfer.errors import ConfigError
from privinfer.models import nanodet
from privinfer.models.onnx_session import cpu_session
from privinfer.serve import onnx_export

log = logging.getLogger(__name__)

# Max abs difference of embeddings between the runtimes; measured ~1e-5 (embeddings of real tiles
# have a std of about 0.1-0.2).
HEAD_TOLERANCE = 1e-3


class ClientHead(ABC):
    """Letterboxed RGB uint8 tiles (S,S,3), all one size -> float32 embeddings (N,C,h,w) on ``device``."""

    name: str
    device: torch.device

    @abstractmethod
    def __call__(self, canvases: list[np.ndarray]) -> torch.Tensor: ...


class TorchHead(ClientHead):
    """Eager torch on the pipeline's model (any device)."""

    name = "torch"

    def __init__(self, model: nanodet.NanoDet) -> None:
        self.model = model
        self.device = next(model.parameters()).device

    def __call__(self, canvases: list[np.ndarray]) -> torch.Tensor:
        with torch.inference_mode():
            return self.model.head(nanodet.normalise(canvases, self.device))


class OnnxHead(ClientHead):
    """onnxruntime on the CPU, on the head's cached ONNX export (exported on first use)."""

    name = "onnxruntime"

    def __init__(self, model: nanodet.NanoDet) -> None:
        self.device = next(model.parameters()).device
        if self.device.type != "cpu":
            raise ConfigError(f"the installed onnxruntime runs on the CPU only, not on device '{self.device}'")
        path = onnx_export.export_onnx("head", model.cut, model)
        # Idle threads do not spin: the client's other work (detection, sending) needs the cores.
        self._session = cpu_session(path, spinning=False)
        self._input = onnx_export.input_name("head")
        self._output = onnx_export.output_name("head")

    def __call__(self, canvases: list[np.ndarray]) -> torch.Tensor:
        feed = {self._input: nanodet.normalise_array(np.stack(canvases))}
        return torch.from_numpy(self._session.run([self._output], feed)[0])


HEAD_RUNTIMES: dict[str, Callable[[nanodet.NanoDet], ClientHead]] = {"onnxruntime": OnnxHead, "torch": TorchHead}


def create_client_head(name: str, model: nanodet.NanoDet) -> ClientHead:
    """The head runtime called ``name`` on ``model``'s cut. onnxruntime asked for on a GPU device
    falls back to torch (which runs there) with a note in the log.

    Raises:
        ConfigError: an unknown runtime name.
        ModelExportError: the head could not be exported to ONNX.
    """
    if name not in HEAD_RUNTIMES:
        raise ConfigError(f"--client-runtime '{name}' is unknown; choose from: {', '.join(sorted(HEAD_RUNTIMES))}")
    if name == "onnxruntime" and next(model.parameters()).device.type != "cpu":
        log.info("client head: onnxruntime runs on the CPU only here; using torch on the model's device")
        name = "torch"
    return HEAD_RUNTIMES[name](model)
