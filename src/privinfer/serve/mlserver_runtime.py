"""An MLServer runtime serving privinfer's exported server models (``full``, ``tail``, ...).

`privinfer export --format mlserver DIR` copies this file into DIR as ``runtime.py``, next to one
folder per model holding its ``model-settings.json`` and ``model.onnx``. It runs inside MLServer's
own environment, so it imports neither privinfer nor torch: only MLServer, numpy and onnxruntime.
Padding and normalisation are inside the graphs; the one class serves every model, whatever its
input is called or typed (read from the graph).
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse
from mlserver.utils import get_model_uri

OUTPUT = "detections"  # every server model answers detections (N, K, 6) float32, decoded in its graph
_NUMPY_TYPES = {
    "tensor(uint8)": np.uint8,
    "tensor(int32)": np.int32,
    "tensor(float16)": np.float16,
    "tensor(float)": np.float32,
}


class OnnxModel(MLModel):
    """One graph; each of the request's tensors is fed to the graph input of its name, cast to that
    input's type (features may come as FP16 or FP32); the answer is ``detections``."""

    async def load(self) -> bool:
        path = await get_model_uri(self.settings)  # ``parameters.uri``, relative to model-settings.json
        self._session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        self._dtypes = {i.name: _NUMPY_TYPES[i.type] for i in self._session.get_inputs()}
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        feed = {
            tensor.name: np.ascontiguousarray(NumpyCodec.decode_input(tensor), dtype=self._dtypes[tensor.name])
            for tensor in payload.inputs
        }
        found = self._session.run([OUTPUT], feed)[0]
        return InferenceResponse(model_name=self.name, outputs=[NumpyCodec.encode_output(OUTPUT, found)])
