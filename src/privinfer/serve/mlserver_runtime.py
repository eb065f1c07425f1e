"""An MLServer runtime serving privinfer's exported NanoDet parts: ``Tail`` and ``Full``.

This file runs inside MLServer's own venv (``scripts/mlserver_interop.py`` copies it next to the
model settings as ``runtime.py``), so it imports neither privinfer nor torch: only MLServer,
numpy and onnxruntime. The ONNX files come from the model settings (``parameters.uri``), written by
the interop script from privinfer's own export; padding and normalisation are inside the graphs.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse


class _OnnxPart(MLModel):
    """One input in, ``raw`` (N, anchors, 124) float32 out."""

    async def load(self) -> bool:
        parameters = self.settings.parameters
        self._session = ort.InferenceSession(parameters.uri, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        array = NumpyCodec.decode_input(payload.inputs[0])
        raw = self._session.run(["raw"], {self._input: self.prepare(array)})[0]
        return InferenceResponse(model_name=self.name, outputs=[NumpyCodec.encode_output("raw", raw)])

    def prepare(self, array: np.ndarray) -> np.ndarray:
        return array


class Tail(_OnnxPart):
    """Embeddings (N,C,h,w), FP16 or FP32 on the wire."""

    def prepare(self, array: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(array, dtype=np.float32)


class Full(_OnnxPart):
    """RGB uint8 chunks (N,H,W,3) of any size: the exported graph pads and normalises them itself."""

    def prepare(self, array: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(array, dtype=np.uint8)
