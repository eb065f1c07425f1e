"""`privinfer export`: the server models as a model repository for an engine people deploy.

``triton``: an NVIDIA Triton model repository, one folder per server model with ``config.pbtxt``
and ``1/model.onnx`` (dynamic batching, ``max_batch_size`` from the request limits). Every name,
data type and dim in a config is read from the graph written beside it, never typed twice.
Pre-processing is inside the graphs (``full`` pads and normalises uint8 pixels itself). Two Triton
backends run them (``TRITON_BACKENDS``): ``onnxruntime``, the default (platform
``onnxruntime_onnx``, what NVIDIA's containers ship), and ``python`` (``1/model.py``, a copy of
``triton_python_model.py``, runs the same graph with onnxruntime: for a ``tritonserver`` that has
only the python backend, such as the one in the ``nvidia-pytriton`` wheel).

``mlserver``: Seldon MLServer model settings, one folder per model with ``model.onnx``, and the
runtime (``mlserver_runtime.py``, copied as ``runtime.py``: it imports neither privinfer nor torch).

Which models a server runs is the table ``SERVED_MODELS``: a new server model is one entry there
(its ONNX part, and the input data type clients send when the graph's differs), no new code.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import onnx
from onnx import TensorProto, helper, shape_inference

from privinfer.errors import ConfigError, ModelExportError
from privinfer.models import nanodet
from privinfer.models.served_decode import DEFAULT_DECODE, ServedDecode
from privinfer.serve import onnx_export, protocol

MODEL_FILE = "model.onnx"
MLSERVER_RUNTIME = Path(__file__).with_name("mlserver_runtime.py")
TRITON_PYTHON_MODEL = Path(__file__).with_name("triton_python_model.py")
# Triton backend -> the line of config.pbtxt that picks it. The graph is the same for both.
TRITON_BACKENDS = {"onnxruntime": 'platform: "onnxruntime_onnx"', "python": 'backend: "python"'}
DEFAULT_TRITON_BACKEND = "onnxruntime"
TRITON_MAX_QUEUE = 8  # requests a model holds waiting; more are refused as busy, never queued without bound
# ONNX element types -> the data type names of Triton's model config and of the protocol.
_TYPES = {
    TensorProto.UINT8: ("TYPE_UINT8", "UINT8"),
    TensorProto.INT32: ("TYPE_INT32", "INT32"),
    TensorProto.FLOAT16: ("TYPE_FP16", "FP16"),
    TensorProto.FLOAT: ("TYPE_FP32", "FP32"),
}


@dataclass(frozen=True)
class ServedModel:
    """One server model: its ONNX part, the data types clients send for inputs whose type differs
    from the graph's (input name -> type), and the largest batch it takes (None: the request limit).

    An input in ``wire_types`` is taken in that type and cast to the graph's own first: an engine
    such as Triton accepts one data type per input, and privinfer's client sends features as FP16
    (half the bytes) to graphs computed in FP32. The patched model takes one chunk per call.
    """

    part: str
    wire_types: tuple[tuple[str, int], ...] = ()
    max_batch: int | None = None
    runtime_class: str = "runtime.OnnxModel"  # the MLServer runtime's class that serves it


SERVED_MODELS: dict[str, ServedModel] = {
    "full": ServedModel("full"),
    "tail": ServedModel("tail", wire_types=(("embedding", TensorProto.FLOAT16),)),
    "patched": ServedModel("patched", wire_types=(("patch_values", TensorProto.FLOAT16),), max_batch=1),
    "repaired": ServedModel("repaired", max_batch=1),
}


@dataclass(frozen=True)
class TensorInfo:
    """A graph input or output as an engine sees it: name, ONNX element type, dims (-1: dynamic)."""

    name: str
    elem_type: int
    dims: tuple[int, ...]

    @property
    def triton_type(self) -> str:
        return _type_names(self)[0]

    @property
    def protocol_type(self) -> str:
        return _type_names(self)[1]


def served_graph(name: str, cut: str = nanodet.DEFAULT_CUT, decode: ServedDecode = DEFAULT_DECODE) -> onnx.ModelProto:
    """The ONNX graph an engine serves as model ``name``: the cached export of its part (ending in
    the decoding to detections, ``decode``), its input taking the wire type, and its shapes
    inferred (so outputs declare their static dims).

    Raises:
        ConfigError: a model not in SERVED_MODELS.
        AssetMissingError / ModelExportError: as `onnx_export.export_onnx`.
    """
    served = _served(name)
    graph = onnx.load(str(onnx_export.export_onnx(served.part, cut, decode=decode)))
    for input_name, wire_type in served.wire_types:
        _cast_input(graph, input_name, wire_type)
    try:
        return shape_inference.infer_shapes(graph, strict_mode=True, data_prop=True)
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError) as error:
        raise ModelExportError(f"shape inference on the '{name}' graph failed: {error}") from None


def graph_tensors(graph: onnx.ModelProto) -> tuple[list[TensorInfo], list[TensorInfo]]:
    """The graph's real inputs (initializers left out) and outputs."""
    weights = {w.name for w in graph.graph.initializer}

    def info(value) -> TensorInfo:
        tensor = value.type.tensor_type
        dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim)
        return TensorInfo(value.name, tensor.elem_type, dims)

    return [info(v) for v in graph.graph.input if v.name not in weights], [info(v) for v in graph.graph.output]


def triton_config(
    name: str, graph: onnx.ModelProto, limits: protocol.RequestLimits, backend: str = DEFAULT_TRITON_BACKEND
) -> str:
    """``config.pbtxt`` for ``graph`` served as ``name`` by ``backend`` (a key of TRITON_BACKENDS):
    every tensor's dims after the batch dim (Triton's convention with ``max_batch_size`` > 0), the
    batch bounded by ``limits.max_batch``.

    Raises ModelExportError when a tensor's first dim is not a dynamic batch."""
    inputs, outputs = graph_tensors(graph)

    def tensors(kind: str, found: list[TensorInfo]) -> list[str]:
        lines = [f"{kind} ["]
        for index, tensor in enumerate(found):
            if not tensor.dims or tensor.dims[0] != -1:
                raise ModelExportError(f"model '{name}': {kind} '{tensor.name}' has no dynamic batch dim first")
            dims = ", ".join(str(d) for d in tensor.dims[1:])
            comma = "," if index < len(found) - 1 else ""
            lines += [
                "  {",
                f'    name: "{tensor.name}"',
                f"    data_type: {tensor.triton_type}",
                f"    dims: [ {dims} ]",
                f"  }}{comma}",
            ]
        return [*lines, "]"]

    return "\n".join(
        [
            f"# privinfer's '{name}' model; names, types and dims are read from 1/{MODEL_FILE}.",
            f'name: "{name}"',
            TRITON_BACKENDS[backend],
            f"max_batch_size: {min(limits.max_batch, _served(name).max_batch or limits.max_batch)}",
            *tensors("input", inputs),
            *tensors("output", outputs),
            "# Requests of the same shape are batched; chunks of different sizes run one by one. A full",
            "# queue refuses at once (UNAVAILABLE, 'Exceeds maximum queue size'): the client reads it as busy",
            "# and sends the chunk to another server, as `privinfer serve --max-in-flight` makes it do.",
            f"dynamic_batching {{ default_queue_policy {{ max_queue_size: {TRITON_MAX_QUEUE} }} }}",
            "instance_group [ { kind: KIND_CPU, count: 1 } ]",
            "",
        ]
    )


def write_triton(
    out: Path,
    limits: protocol.RequestLimits,
    cut: str = nanodet.DEFAULT_CUT,
    decode: ServedDecode = DEFAULT_DECODE,
    backend: str = DEFAULT_TRITON_BACKEND,
) -> list[Path]:
    """A Triton model repository in ``out`` for ``backend``; returns the config files written."""
    written = []
    for name in SERVED_MODELS:
        graph = served_graph(name, cut, decode)
        version = out / name / "1"
        _save(graph, version / MODEL_FILE)
        if backend == "python":
            _copy(TRITON_PYTHON_MODEL, version / "model.py")
        config = out / name / "config.pbtxt"
        _write(config, triton_config(name, graph, limits, backend))
        written.append(config)
    return written


def write_mlserver(
    out: Path, limits: protocol.RequestLimits, cut: str = nanodet.DEFAULT_CUT, decode: ServedDecode = DEFAULT_DECODE
) -> list[Path]:
    """MLServer's ``settings.json``, ``runtime.py`` and one folder per model (``model-settings.json``
    and its graph) in ``out``; returns the model settings written. Ports and host are MLServer's
    defaults (HTTP 8080, gRPC 8081, all interfaces), or its ``MLSERVER_*`` environment variables.

    No adaptive batching (``max_batch_size`` / ``max_batch_time``), so ``limits`` are not written:
    MLServer would concatenate queued requests, and chunks of different sizes cannot be stacked."""
    settings = {"parallel_workers": 0, "debug": False}  # models run in the server process itself
    _write(out / "settings.json", json.dumps(settings, indent=2) + "\n")
    _copy(MLSERVER_RUNTIME, out / "runtime.py")
    written = []
    for name, served in SERVED_MODELS.items():
        _save(served_graph(name, cut, decode), out / name / MODEL_FILE)
        model_settings = {
            "name": name,
            "implementation": served.runtime_class,
            "parameters": {"uri": f"./{MODEL_FILE}", "version": protocol.MODEL_VERSION},
        }
        path = out / name / "model-settings.json"
        _write(path, json.dumps(model_settings, indent=2) + "\n")
        written.append(path)
    return written


FORMATS: dict[str, Callable[[Path, protocol.RequestLimits, str, ServedDecode], list[Path]]] = {
    "triton": write_triton,
    "mlserver": write_mlserver,
}


def export_repository(
    form: str,
    out: Path,
    limits: protocol.RequestLimits | None = None,
    cut: str = nanodet.DEFAULT_CUT,
    decode: ServedDecode = DEFAULT_DECODE,
    backend: str | None = None,
) -> list[Path]:
    """Write the server models in format ``form`` ('triton' or 'mlserver') into ``out``, each graph
    answering detections kept by ``decode`` (score floor, top-k); ``backend`` picks Triton's
    (TRITON_BACKENDS; None: onnxruntime).

    Raises:
        ConfigError: an unknown format or backend, a backend for a format other than triton, or
            ``out`` is a file.
        ModelExportError: a file could not be written, or a graph not exported.
        AssetMissingError: the NanoDet assets are not fetched.
    """
    if form not in FORMATS:
        raise ConfigError(f"unknown export format '{form}'; choose from: {', '.join(FORMATS)}")
    if backend is not None and form != "triton":
        raise ConfigError(f"--backend {backend}: only --format triton has backends to choose from")
    if backend is not None and backend not in TRITON_BACKENDS:
        raise ConfigError(f"--backend '{backend}' is unknown; choose from: {', '.join(TRITON_BACKENDS)}")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"export folder {out} is a file; give a folder (it is created if missing)")
    limits = limits or protocol.RequestLimits()
    if form == "triton":
        return write_triton(out, limits, cut, decode, backend or DEFAULT_TRITON_BACKEND)
    return FORMATS[form](out, limits, cut, decode)


def _cast_input(graph: onnx.ModelProto, name: str, wire_type: int) -> None:
    """Make the graph's input ``name`` take ``wire_type``, cast to its own type before anything reads it."""
    (value,) = [v for v in graph.graph.input if v.name == name]
    own = value.type.tensor_type.elem_type
    if own == wire_type:
        return
    inner = f"{value.name}_{onnx.TensorProto.DataType.Name(own).lower()}"
    for node in graph.graph.node:
        node.input[:] = [inner if name == value.name else name for name in node.input]
    graph.graph.node.insert(0, helper.make_node("Cast", [value.name], [inner], to=own, name=f"{value.name}_cast"))
    value.type.tensor_type.elem_type = wire_type


def _served(name: str) -> ServedModel:
    try:
        return SERVED_MODELS[name]
    except KeyError:
        raise ConfigError(f"no served model '{name}'; choose from: {', '.join(SERVED_MODELS)}") from None


def _type_names(tensor: TensorInfo) -> tuple[str, str]:
    try:
        return _TYPES[tensor.elem_type]
    except KeyError:
        kind = onnx.TensorProto.DataType.Name(tensor.elem_type)
        raise ModelExportError(f"tensor '{tensor.name}' is {kind}: no engine data type for it here") from None


def _save(graph: onnx.ModelProto, path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(graph, str(path))
    except OSError as error:
        raise ModelExportError(f"cannot write {path}: {error.strerror}") from None


def _copy(source: Path, path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, path)
    except OSError as error:
        raise ModelExportError(f"cannot write {path}: {error.strerror}") from None


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    except OSError as error:
        raise ModelExportError(f"cannot write {path}: {error.strerror}") from None
