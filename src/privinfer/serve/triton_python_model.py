"""A Triton python-backend model running one of privinfer's exported server graphs with onnxruntime.

`privinfer export --format triton --backend python DIR` copies this file into each model's version
folder as ``model.py``, beside ``model.onnx``. It serves the graph on a ``tritonserver`` that has
only the python backend (the one in the ``nvidia-pytriton`` wheel): the stub process runs it, with
numpy and onnxruntime importable there (``PYTHONPATH``). It imports neither privinfer nor torch.
Padding and normalisation are inside the graph: each request's tensors go in as they came, cast to
the graph input's type, and its answer is the graph's one output.
"""

from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils

MODEL_FILE = "model.onnx"
_NUMPY_TYPES = {
    "tensor(uint8)": np.uint8,
    "tensor(int32)": np.int32,
    "tensor(float16)": np.float16,
    "tensor(float)": np.float32,
}


class TritonPythonModel:
    """One graph, one onnxruntime session created once at load, every request run through it."""

    def initialize(self, args: dict) -> None:
        version = os.path.join(args["model_repository"], args["model_version"])
        options = ort.SessionOptions()
        threads = int(os.environ.get("PRIVINFER_TRITON_THREADS", "0"))  # 0: onnxruntime's choice
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(
            os.path.join(version, MODEL_FILE), options, providers=["CPUExecutionProvider"]
        )
        self.inputs = {i.name: _NUMPY_TYPES[i.type] for i in self.session.get_inputs()}
        self.output = self.session.get_outputs()[0].name

    def execute(self, requests: list) -> list:
        """One response per request, in order; a request that cannot run gets an error response
        naming the problem (the others still run)."""
        responses = []
        for request in requests:
            try:
                feed = {
                    name: np.ascontiguousarray(pb_utils.get_input_tensor_by_name(request, name).as_numpy(), dtype)
                    for name, dtype in self.inputs.items()
                }
                raw = self.session.run([self.output], feed)[0]
                responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor(self.output, raw)]))
            except Exception as error:  # reported to the client on its own request, never a dead model
                responses.append(
                    pb_utils.InferenceResponse(error=pb_utils.TritonError(f"{type(error).__name__}: {error}"))
                )
        return responses
