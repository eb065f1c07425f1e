"""The Open Inference Protocol v2 (KServe / Triton ``GRPCInferenceService``) as privinfer speaks it.

Two models: ``tail`` (input ``embedding`` FP16 or FP32 [N,C,h,w]) and ``full`` (input ``pixels``
UINT8 [N,H,W,3], a chunk's pixels of any size: the model pads them); both answer ``raw`` FP32
[N, anchors, 124]. Tensors travel as raw little-endian bytes (``raw_input_contents`` /
``raw_output_contents``) with their shape and datatype. Server and client both build and check
messages here, so the two cannot drift apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from tritonclient.grpc import service_pb2 as pb

from privinfer.errors import BadRequestError, RequestTooLargeError, ServerCallError, UnknownModelError
from privinfer.models import nanodet

DATATYPES: dict[str, np.dtype] = {
    "UINT8": np.dtype(np.uint8),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
}
INPUT_NAMES = {"tail": "embedding", "full": "pixels"}
OUTPUT_NAME = "raw"
MODEL_VERSION = "1"
# Server-side time of the model call, returned in the response parameters (for overhead figures).
COMPUTE_MS = "compute_ms"


@dataclass(frozen=True)
class TensorSpec:
    """A tensor's name, accepted datatypes (the first is advertised) and shape (-1: any size)."""

    name: str
    datatypes: tuple[str, ...]
    shape: tuple[int, ...]


@dataclass(frozen=True)
class ModelSpec:
    """One served model. Its input's ``spatial_axes`` hold the chunk's height and width, each element
    standing for ``stride`` pixels, and must be multiples of ``spatial_multiple`` elements (pixels
    are padded by the model itself; an embedding's sides must come from a padded chunk)."""

    name: str
    input: TensorSpec
    output: TensorSpec
    spatial_axes: tuple[int, int]
    stride: int = 1
    spatial_multiple: int = 1


@dataclass(frozen=True)
class RequestLimits:
    """What a server accepts per request (the gRPC message size limit is set on the server)."""

    max_batch: int = 64
    max_side: int = 2048  # tile side in pixels (an embedding's side times its stride)


def served_models(channels: int, stride: int) -> dict[str, ModelSpec]:
    """The two models for a task model whose embedding has ``channels`` maps at 1/``stride``."""
    output = TensorSpec(OUTPUT_NAME, ("FP32",), (-1, -1, nanodet.RAW_WIDTH))
    tail_input = TensorSpec(INPUT_NAMES["tail"], ("FP16", "FP32"), (-1, channels, -1, -1))
    full_input = TensorSpec(INPUT_NAMES["full"], ("UINT8",), (-1, -1, -1, 3))
    return {
        "tail": ModelSpec("tail", tail_input, output, (2, 3), stride, max(1, nanodet.PAD_MULTIPLE // stride)),
        "full": ModelSpec("full", full_input, output, (1, 2)),
    }


# ---------------------------------------------------------------- client side


def infer_request(model: str, batch: np.ndarray) -> pb.ModelInferRequest:
    """A ModelInfer request carrying ``batch`` as the model's one input, raw bytes."""
    datatype = _datatype_name(batch.dtype)
    tensor = pb.ModelInferRequest.InferInputTensor(name=INPUT_NAMES[model], datatype=datatype, shape=batch.shape)
    return pb.ModelInferRequest(
        model_name=model,
        inputs=[tensor],
        outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(name=OUTPUT_NAME)],
        raw_input_contents=[np.ascontiguousarray(batch).astype(batch.dtype.newbyteorder("<"), copy=False).tobytes()],
    )


def decode_response(response: pb.ModelInferResponse, batch: int, where: str) -> np.ndarray:
    """The raw outputs (N, anchors, 124) float32 of a response to a batch of ``batch``.

    Raises:
        ServerCallError: the answer has no well-formed FP32 ``raw`` output for that batch (``where``
            names the server).
    """
    for index, tensor in enumerate(response.outputs):
        if tensor.name != OUTPUT_NAME:
            continue
        shape = tuple(int(d) for d in tensor.shape)
        if tensor.datatype != "FP32" or len(shape) != 3 or shape[0] != batch or shape[2] != nanodet.RAW_WIDTH:
            raise ServerCallError(
                f"{where}: output '{OUTPUT_NAME}' is {tensor.datatype} {list(shape)}, "
                f"expected FP32 [{batch}, anchors, {nanodet.RAW_WIDTH}]"
            )
        data = _raw_output(response, tensor, index)
        if len(data) != math.prod(shape) * 4:
            raise ServerCallError(f"{where}: output '{OUTPUT_NAME}' has {len(data)} bytes for shape {list(shape)}")
        return np.frombuffer(data, dtype="<f4").reshape(shape).astype(np.float32)
    raise ServerCallError(f"{where}: the response has no output named '{OUTPUT_NAME}'")


def _raw_output(response: pb.ModelInferResponse, tensor, index: int) -> bytes:
    if index < len(response.raw_output_contents):
        return response.raw_output_contents[index]
    if tensor.contents.fp32_contents:  # a peer that answers typed contents instead of raw bytes
        return np.asarray(tensor.contents.fp32_contents, dtype="<f4").tobytes()
    return b""


# ---------------------------------------------------------------- server side


def model_spec(models: dict[str, ModelSpec], name: str, version: str = "") -> ModelSpec:
    """Raises UnknownModelError for a model or version not served."""
    if name not in models:
        raise UnknownModelError(f"no model '{name}' here; this server serves: {', '.join(sorted(models))}")
    if version not in ("", MODEL_VERSION):
        raise UnknownModelError(f"model '{name}' has no version '{version}'; only version {MODEL_VERSION}")
    return models[name]


def decode_request(request: pb.ModelInferRequest, spec: ModelSpec, limits: RequestLimits) -> np.ndarray:
    """The request's one input as an array, checked against ``spec`` and ``limits``.

    Raises:
        BadRequestError: wrong input count or name, datatype, shape, byte count, requested outputs.
        RequestTooLargeError: a batch or tile side over the limits.
    """
    expected = spec.input
    if len(request.inputs) != 1:
        raise BadRequestError(
            f"model '{spec.name}' takes exactly one input '{expected.name}', got {len(request.inputs)}"
        )
    tensor = request.inputs[0]
    if tensor.name != expected.name:
        raise BadRequestError(f"model '{spec.name}' has no input '{tensor.name}'; its input is '{expected.name}'")
    if tensor.datatype not in expected.datatypes:
        raise BadRequestError(
            f"input '{expected.name}' of model '{spec.name}' must be {' or '.join(expected.datatypes)}, "
            f"not '{tensor.datatype}'"
        )
    unknown = [o.name for o in request.outputs if o.name != spec.output.name]
    if unknown:
        raise BadRequestError(f"model '{spec.name}' has no output {unknown}; its output is '{spec.output.name}'")
    shape = tuple(int(d) for d in tensor.shape)
    _check_shape(spec, shape, limits)
    if len(request.raw_input_contents) != 1:
        raise BadRequestError(f"send input '{expected.name}' as raw_input_contents (one buffer), not typed contents")
    data = request.raw_input_contents[0]
    dtype = DATATYPES[tensor.datatype].newbyteorder("<")
    if len(data) != math.prod(shape) * dtype.itemsize:
        raise BadRequestError(
            f"input '{expected.name}' {tensor.datatype} {list(shape)} needs {math.prod(shape) * dtype.itemsize} "
            f"bytes, got {len(data)}"
        )
    # A writable, native-order copy: runtimes may hand it to torch.
    return np.frombuffer(data, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def _check_shape(spec: ModelSpec, shape: tuple[int, ...], limits: RequestLimits) -> None:
    expected = spec.input
    name = f"input '{expected.name}' of model '{spec.name}'"
    pattern = "[" + ", ".join("N" if i == 0 else ("?" if d < 0 else str(d)) for i, d in enumerate(expected.shape)) + "]"
    if len(shape) != len(expected.shape) or any(d < 1 for d in shape):
        raise BadRequestError(f"{name} must have shape {pattern}, got {list(shape)}")
    wrong = [i for i, d in enumerate(expected.shape) if d >= 0 and shape[i] != d]
    if wrong:
        raise BadRequestError(f"{name} must have shape {pattern}, got {list(shape)}")
    sides = [shape[axis] for axis in spec.spatial_axes]
    if any(side % spec.spatial_multiple for side in sides):
        raise BadRequestError(f"{name}: spatial size {sides} must be multiples of {spec.spatial_multiple}")
    if shape[0] > limits.max_batch:
        raise RequestTooLargeError(f"{name}: batch of {shape[0]} is over this server's limit of {limits.max_batch}")
    if max(sides) * spec.stride > limits.max_side:
        raise RequestTooLargeError(
            f"{name}: a {max(sides) * spec.stride} px tile is over this server's limit of {limits.max_side} px"
        )


def infer_response(spec: ModelSpec, raw: np.ndarray, compute_ms: float) -> pb.ModelInferResponse:
    """The response carrying raw outputs (N, anchors, 124) as FP32 raw bytes."""
    raw = np.ascontiguousarray(raw, dtype="<f4")
    tensor = pb.ModelInferResponse.InferOutputTensor(name=spec.output.name, datatype="FP32", shape=raw.shape)
    response = pb.ModelInferResponse(
        model_name=spec.name, model_version=MODEL_VERSION, outputs=[tensor], raw_output_contents=[raw.tobytes()]
    )
    response.parameters[COMPUTE_MS].double_param = compute_ms
    return response


def model_metadata(spec: ModelSpec, platform: str) -> pb.ModelMetadataResponse:
    def tensor(t: TensorSpec) -> pb.ModelMetadataResponse.TensorMetadata:
        return pb.ModelMetadataResponse.TensorMetadata(name=t.name, datatype=t.datatypes[0], shape=t.shape)

    return pb.ModelMetadataResponse(
        name=spec.name,
        versions=[MODEL_VERSION],
        platform=platform,
        inputs=[tensor(spec.input)],
        outputs=[tensor(spec.output)],
    )


def _datatype_name(dtype: np.dtype) -> str:
    for name, known in DATATYPES.items():
        if known == dtype:
            return name
    raise BadRequestError(f"cannot send dtype {dtype}: the protocol tensors here are {', '.join(DATATYPES)}")
