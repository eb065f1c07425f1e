"""The Open Inference Protocol v2 (KServe / Triton ``GRPCInferenceService``) as privinfer speaks it.

Three models: ``tail`` (input ``embedding`` FP16 or FP32 [N,C,h,w]), ``full`` (input ``pixels``
UINT8 [N,H,W,3], a chunk's pixels of any size: the model pads them) and ``patched`` (a chunk's
pixels with its sensitive regions filled, ``patch_cells`` INT32 [1,K], ``patch_channels`` INT32
[1,k] and ``patch_values`` FP16 or FP32 [1,K,k]: the feature patch written into those cells, every
channel not sent zero) and ``repaired`` (a chunk's pixels with its sensitive regions filled and
``region_cells`` INT32 [1,K]: the regions' cells, which the graph repairs from their context); all
answer ``detections`` FP32 [N, K, 6] (x1, y1, x2, y2 in the chunk's pixels, score, class id; at
most 300 rows, a few kB: ``models.served_decode``). Tensors travel as raw little-endian bytes
(``raw_input_contents`` / ``raw_output_contents``) with their shape and datatype. Server and client
both build and check messages here, so the two cannot drift apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from tritonclient.grpc import service_pb2 as pb

from privinfer.errors import BadRequestError, RequestTooLargeError, ServerCallError, UnknownModelError
from privinfer.models import nanodet
from privinfer.models.served_decode import DETECTION_WIDTH
from privinfer.serve.base import MODEL_INPUTS

DATATYPES: dict[str, np.dtype] = {
    "UINT8": np.dtype(np.uint8),
    "INT32": np.dtype(np.int32),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
}
INPUT_NAMES = {model: names[0] for model, names in MODEL_INPUTS.items()}  # each model's first input
OUTPUT_NAME = "detections"
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
    """One served model. Its first input's ``spatial_axes`` hold the chunk's height and width, each
    element standing for ``stride`` pixels, and must be multiples of ``spatial_multiple`` elements
    (pixels are padded by the model itself; an embedding's sides must come from a padded chunk).
    ``max_batch``: a model that takes one chunk per call (1) says so; None: the server's limit."""

    name: str
    inputs: tuple[TensorSpec, ...]
    output: TensorSpec
    spatial_axes: tuple[int, int]
    stride: int = 1
    spatial_multiple: int = 1
    max_batch: int | None = None
    cell_stride: int = 0  # pixels per embedding cell of patch / region cells (patched, repaired)
    channels: int = 0  # embedding channels a feature patch may name (patched model only)

    @property
    def input(self) -> TensorSpec:
        """The first input: the pixels or the embedding."""
        return self.inputs[0]


@dataclass(frozen=True)
class RequestLimits:
    """What a server accepts per request (the gRPC message size limit is set on the server)."""

    max_batch: int = 64
    max_side: int = 2048  # tile side in pixels (an embedding's side times its stride)


def served_models(channels: int, stride: int) -> dict[str, ModelSpec]:
    """The models for a task model whose embedding has ``channels`` maps at 1/``stride``."""
    output = TensorSpec(OUTPUT_NAME, ("FP32",), (-1, -1, DETECTION_WIDTH))
    pixels = TensorSpec("pixels", ("UINT8",), (-1, -1, -1, 3))
    embedding = TensorSpec("embedding", ("FP16", "FP32"), (-1, channels, -1, -1))
    cells = TensorSpec("patch_cells", ("INT32",), (-1, -1))
    sent = TensorSpec("patch_channels", ("INT32",), (-1, -1))
    values = TensorSpec("patch_values", ("FP16", "FP32"), (-1, -1, -1))
    regions = TensorSpec("region_cells", ("INT32",), (-1, -1))
    multiple = max(1, nanodet.PAD_MULTIPLE // stride)
    return {
        "tail": ModelSpec("tail", (embedding,), output, (2, 3), stride, multiple),
        "full": ModelSpec("full", (pixels,), output, (1, 2)),
        "patched": ModelSpec(
            "patched",
            (pixels, cells, sent, values),
            output,
            (1, 2),
            1,
            1,
            max_batch=1,
            cell_stride=stride,
            channels=channels,
        ),
        "repaired": ModelSpec(
            "repaired", (pixels, regions), output, (1, 2), 1, 1, max_batch=1, cell_stride=stride, channels=channels
        ),
    }  # fmt: skip


# ---------------------------------------------------------------- client side


def infer_request(model: str, inputs: dict[str, np.ndarray]) -> pb.ModelInferRequest:
    """A ModelInfer request carrying each of the model's ``inputs`` (name -> batch array), raw bytes."""
    tensors, contents = [], []
    for name, batch in inputs.items():
        tensors.append(
            pb.ModelInferRequest.InferInputTensor(name=name, datatype=_datatype_name(batch.dtype), shape=batch.shape)
        )
        contents.append(np.ascontiguousarray(batch).astype(batch.dtype.newbyteorder("<"), copy=False).tobytes())
    return pb.ModelInferRequest(
        model_name=model,
        inputs=tensors,
        outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(name=OUTPUT_NAME)],
        raw_input_contents=contents,
    )


def decode_response(response: pb.ModelInferResponse, batch: int, where: str) -> np.ndarray:
    """The detections (N, K, 6) float32 of a response to a batch of ``batch``.

    Raises:
        ServerCallError: the answer has no well-formed FP32 ``detections`` output for that batch
            (``where`` names the server).
    """
    for index, tensor in enumerate(response.outputs):
        if tensor.name != OUTPUT_NAME:
            continue
        shape = tuple(int(d) for d in tensor.shape)
        if tensor.datatype != "FP32" or len(shape) != 3 or shape[0] != batch or shape[2] != DETECTION_WIDTH:
            raise ServerCallError(
                f"{where}: output '{OUTPUT_NAME}' is {tensor.datatype} {list(shape)}, "
                f"expected FP32 [{batch}, detections, {DETECTION_WIDTH}]"
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


def decode_request(request: pb.ModelInferRequest, spec: ModelSpec, limits: RequestLimits) -> dict[str, np.ndarray]:
    """The request's inputs by name, as arrays, checked against ``spec`` and ``limits``.

    Raises:
        BadRequestError: wrong input count or names, datatype, shape, byte count, requested outputs,
            patch cells outside the chunk.
        RequestTooLargeError: a batch or chunk side over the limits.
    """
    expected = {t.name: t for t in spec.inputs}
    listed = " and ".join(f"'{name}'" for name in expected)
    if len(request.inputs) != len(expected):
        many = "exactly one input" if len(expected) == 1 else f"{len(expected)} inputs"
        raise BadRequestError(f"model '{spec.name}' takes {many} {listed}, got {len(request.inputs)}")
    unknown = [o.name for o in request.outputs if o.name != spec.output.name]
    if unknown:
        raise BadRequestError(f"model '{spec.name}' has no output {unknown}; its output is '{spec.output.name}'")
    if len(request.raw_input_contents) != len(expected):
        raise BadRequestError(f"send inputs {listed} as raw_input_contents (one buffer each), not typed contents")
    arrays = {}
    for tensor, data in zip(request.inputs, request.raw_input_contents, strict=True):
        if tensor.name not in expected or tensor.name in arrays:
            its = "its input is" if len(expected) == 1 else "its inputs are"
            raise BadRequestError(f"model '{spec.name}' has no input '{tensor.name}'; {its} {listed}")
        arrays[tensor.name] = _decoded_input(spec, expected[tensor.name], tensor, data)
    _check_shapes(spec, arrays, limits)
    return {t.name: arrays[t.name] for t in spec.inputs}


def _decoded_input(spec: ModelSpec, expected: TensorSpec, tensor, data: bytes) -> np.ndarray:
    if tensor.datatype not in expected.datatypes:
        raise BadRequestError(
            f"input '{expected.name}' of model '{spec.name}' must be {' or '.join(expected.datatypes)}, "
            f"not '{tensor.datatype}'"
        )
    shape = tuple(int(d) for d in tensor.shape)
    fits = len(shape) == len(expected.shape) and all(
        size >= 0 and (want < 0 or size == want) for size, want in zip(shape, expected.shape, strict=True)
    )
    if not fits:
        pattern = ", ".join("N" if i == 0 else ("?" if d < 0 else str(d)) for i, d in enumerate(expected.shape))
        raise BadRequestError(
            f"input '{expected.name}' of model '{spec.name}' must have shape [{pattern}], got {list(shape)}"
        )
    dtype = DATATYPES[tensor.datatype].newbyteorder("<")
    if len(data) != math.prod(shape) * dtype.itemsize:
        raise BadRequestError(
            f"input '{expected.name}' {tensor.datatype} {list(shape)} needs {math.prod(shape) * dtype.itemsize} "
            f"bytes, got {len(data)}"
        )
    # A writable, native-order copy: runtimes may hand it to torch.
    return np.frombuffer(data, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def _check_shapes(spec: ModelSpec, arrays: dict[str, np.ndarray], limits: RequestLimits) -> None:
    first = arrays[spec.input.name]
    name = f"input '{spec.input.name}' of model '{spec.name}'"
    if any(d < 1 for d in first.shape):
        raise BadRequestError(f"{name}: every size must be at least 1, got {list(first.shape)}")
    batches = {a.shape[0] for a in arrays.values()}
    if len(batches) != 1:
        raise BadRequestError(f"model '{spec.name}': its inputs must have one batch size, got {sorted(batches)}")
    sides = [first.shape[axis] for axis in spec.spatial_axes]
    if any(side % spec.spatial_multiple for side in sides):
        raise BadRequestError(f"{name}: spatial size {sides} must be multiples of {spec.spatial_multiple}")
    limit = min(limits.max_batch, spec.max_batch or limits.max_batch)
    if first.shape[0] > limit:
        raise RequestTooLargeError(f"{name}: batch of {first.shape[0]} is over this server's limit of {limit}")
    if max(sides) * spec.stride > limits.max_side:
        raise RequestTooLargeError(
            f"{name}: a {max(sides) * spec.stride} px tile is over this server's limit of {limits.max_side} px"
        )
    if "patch_cells" in arrays:
        _check_patch(spec, first.shape, arrays["patch_cells"], arrays["patch_channels"], arrays["patch_values"])
    if "region_cells" in arrays:
        _check_cells(spec, first.shape, arrays["region_cells"], "region cells")


def _check_patch(
    spec: ModelSpec, pixels: tuple[int, ...], cells: np.ndarray, sent: np.ndarray, values: np.ndarray
) -> None:
    """Patch cells must name cells of the chunk's embedding grid and channels of its embedding, and
    the values hold one entry per cell and channel."""
    if values.shape[1:] != (cells.shape[1], sent.shape[1]):
        raise BadRequestError(
            f"model '{spec.name}': {cells.shape[1]} patch cells and {sent.shape[1]} channels need values of "
            f"[1, {cells.shape[1]}, {sent.shape[1]}], got {list(values.shape)}"
        )
    if sent.size and (sent.min() < 0 or sent.max() >= spec.channels or len(np.unique(sent)) != sent.size):
        raise BadRequestError(
            f"model '{spec.name}': patch channels must be distinct channels of the {spec.channels}, got "
            f"{sent.ravel().tolist()[:8]}"
        )
    _check_cells(spec, pixels, cells, "patch cells")


def _check_cells(spec: ModelSpec, pixels: tuple[int, ...], cells: np.ndarray, what: str) -> None:
    """Cells must name cells of the chunk's embedding grid."""
    stride = spec.cell_stride
    grid = (nanodet.padded_side(pixels[1]) // stride) * (nanodet.padded_side(pixels[2]) // stride)
    if cells.size and (cells.min() < 0 or cells.max() >= grid):
        raise BadRequestError(
            f"model '{spec.name}': {what} must lie in the chunk's {grid} embedding cells, got "
            f"{int(cells.min())}..{int(cells.max())}"
        )


def infer_response(spec: ModelSpec, detections: np.ndarray, compute_ms: float) -> pb.ModelInferResponse:
    """The response carrying detections (N, K, 6) as FP32 raw bytes."""
    answer = np.ascontiguousarray(detections, dtype="<f4")
    tensor = pb.ModelInferResponse.InferOutputTensor(name=spec.output.name, datatype="FP32", shape=answer.shape)
    response = pb.ModelInferResponse(
        model_name=spec.name, model_version=MODEL_VERSION, outputs=[tensor], raw_output_contents=[answer.tobytes()]
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
        inputs=[tensor(t) for t in spec.inputs],
        outputs=[tensor(spec.output)],
    )


def _datatype_name(dtype: np.dtype) -> str:
    for name, known in DATATYPES.items():
        if known == dtype:
            return name
    raise BadRequestError(f"cannot send dtype {dtype}: the protocol tensors here are {', '.join(DATATYPES)}")
