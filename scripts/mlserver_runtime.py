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
    """The graph's inputs in, by name, each cast to the dtype the graph takes; ``raw`` (N, anchors,
    124) float32 out."""

    dtypes: dict[str, type] = {}

    async def load(self) -> bool:
        parameters = self.settings.parameters
        self._session = ort.InferenceSession(parameters.uri, providers=["CPUExecutionProvider"])
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        feed = {
            tensor.name: np.ascontiguousarray(NumpyCodec.decode_input(tensor), dtype=self.dtypes[tensor.name])
            for tensor in payload.inputs
        }
        raw = self._session.run(["raw"], feed)[0]
        return InferenceResponse(model_name=self.name, outputs=[NumpyCodec.encode_output("raw", raw)])


class Tail(_OnnxPart):
    """Embeddings (N,C,h,w), FP16 or FP32 on the wire."""

    dtypes = {"embedding": np.float32}


class Full(_OnnxPart):
    """RGB uint8 chunks (N,H,W,3) of any size: the exported graph pads and normalises them itself."""

    dtypes = {"pixels": np.uint8}


class Patched(_OnnxPart):
    """One chunk's filled pixels (1,H,W,3) uint8 and its feature patch: cells (1,K) and channels (1,k)
    int32, values (1,K,k)."""

    dtypes = {"pixels": np.uint8, "patch_cells": np.int32, "patch_channels": np.int32, "patch_values": np.float32}
