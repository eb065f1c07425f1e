"""`privinfer export`: the Triton repository's configs match their graphs, offline.

Each ``config.pbtxt`` is parsed strictly as protobuf text into Triton's own ``ModelConfig``
message (``tritonclient.grpc.model_config_pb2``: an unknown field or a bad value fails the parse),
checked against the ``1/model.onnx`` beside it, and onnxruntime runs that graph on a request the
config declares valid (odd sizes, a batch of two, the input data type the config names).
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from privinfer.cli import main
from privinfer.errors import ConfigError
from privinfer.models.served_decode import DETECTION_WIDTH
from privinfer.serve import MODEL_INPUTS, export
from privinfer.serve.protocol import INPUT_NAMES, OUTPUT_NAME, RequestLimits

NUMPY = {mc.TYPE_UINT8: np.uint8, mc.TYPE_INT32: np.int32, mc.TYPE_FP16: np.float16, mc.TYPE_FP32: np.float32}
ONNX = {
    mc.TYPE_UINT8: onnx.TensorProto.UINT8,
    mc.TYPE_INT32: onnx.TensorProto.INT32,
    mc.TYPE_FP16: onnx.TensorProto.FLOAT16,
    mc.TYPE_FP32: onnx.TensorProto.FLOAT,
}
# A size for each dynamic dim of a request: odd pixel sides (the graph pads them), embedding sides
# as from a chunk padded to 32 (a multiple of 4 at stride 8).
DYNAMIC = {"full": 45, "tail": 8}


def _valid_request(name: str, config: mc.ModelConfig) -> dict[str, np.ndarray]:
    """Inputs the config declares valid: a batch of two of odd sizes; for the patched model (one
    chunk per call) a 45 x 45 chunk with a patch of three of its 36 cells and two channels; for the
    repaired model the same chunk and three region cells."""
    rng = np.random.default_rng(0)
    if name == "patched":
        return {
            "pixels": rng.integers(0, 256, (1, 45, 45, 3), dtype=np.uint8),
            "patch_cells": np.array([[0, 7, 35]], np.int32),
            "patch_channels": np.array([[2, 100]], np.int32),
            "patch_values": rng.standard_normal((1, 3, 2)).astype(np.float16),
        }
    if name == "repaired":
        return {
            "pixels": rng.integers(0, 256, (1, 45, 45, 3), dtype=np.uint8),
            "region_cells": np.array([[0, 7, 35]], np.int32),
        }
    (tensor,) = config.input
    shape = [2, *(DYNAMIC[name] if d == -1 else d for d in tensor.dims)]
    return {tensor.name: (rng.random(shape) * 255).astype(NUMPY[tensor.data_type])}


@pytest.fixture(scope="module")
def triton_repo(tmp_path_factory):
    out = tmp_path_factory.mktemp("triton")
    assert main(["export", "--format", "triton", str(out)]) == 0
    return out


def _config(folder) -> mc.ModelConfig:
    return text_format.Parse((folder / "config.pbtxt").read_text(), mc.ModelConfig())


def _graph_dims(value) -> list[int]:
    return [d.dim_value if d.HasField("dim_value") else -1 for d in value.type.tensor_type.shape.dim]


def test_the_repository_has_one_folder_per_server_model(triton_repo):
    assert sorted(p.name for p in triton_repo.iterdir()) == sorted(export.SERVED_MODELS) == sorted(INPUT_NAMES)
    for name in export.SERVED_MODELS:
        assert (triton_repo / name / "config.pbtxt").is_file() and (triton_repo / name / "1" / "model.onnx").is_file()


@pytest.mark.parametrize("name", sorted(export.SERVED_MODELS))
def test_each_config_parses_strictly_and_matches_its_graph(triton_repo, name):
    config = _config(triton_repo / name)
    assert config.name == name and config.platform == "onnxruntime_onnx"
    batch = min(RequestLimits().max_batch, export.SERVED_MODELS[name].max_batch or RequestLimits().max_batch)
    assert config.max_batch_size == batch and config.HasField("dynamic_batching")
    graph = onnx.load(str(triton_repo / name / "1" / "model.onnx"))
    onnx.checker.check_model(graph)
    weights = {w.name for w in graph.graph.initializer}
    inputs = [v for v in graph.graph.input if v.name not in weights]
    for declared, found in ((config.input, inputs), (config.output, graph.graph.output)):
        assert [t.name for t in declared] == [v.name for v in found]
        for tensor, value in zip(declared, found, strict=True):
            assert ONNX[tensor.data_type] == value.type.tensor_type.elem_type, tensor.name
            assert [-1, *tensor.dims] == _graph_dims(value), tensor.name  # the batch dim first, then the config's
    # What privinfer's client sends and expects (protocol.py) is what the config declares.
    assert [t.name for t in config.input] == list(MODEL_INPUTS[name]) and [t.name for t in config.output] == [
        OUTPUT_NAME
    ]
    assert list(config.output[0].dims) == [-1, DETECTION_WIDTH]


@pytest.mark.parametrize("name", sorted(export.SERVED_MODELS))
def test_onnxruntime_runs_each_model_on_a_request_its_config_declares_valid(triton_repo, name):
    config = _config(triton_repo / name)
    request = _valid_request(name, config)
    for tensor in config.input:  # the request is what the config declares: names, types, dims
        array = request[tensor.name]
        assert array.dtype == NUMPY[tensor.data_type] and array.ndim == len(tensor.dims) + 1
        assert all(d == -1 or d == size for d, size in zip(tensor.dims, array.shape[1:], strict=True))
    assert len(next(iter(request.values()))) <= config.max_batch_size
    session = ort.InferenceSession(str(triton_repo / name / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    (raw,) = session.run([config.output[0].name], request)
    assert raw.dtype == NUMPY[config.output[0].data_type] and raw.shape[0] == len(next(iter(request.values())))
    assert list(raw.shape[2:]) == [d for d in config.output[0].dims if d != -1]
    assert np.isfinite(raw).all()


def test_the_fp16_tail_graph_answers_like_the_fp32_one(triton_repo):
    """The cast in front of the Triton tail changes nothing but the accepted type."""
    embedding = np.random.default_rng(1).standard_normal((1, 128, 8, 8)).astype(np.float16)
    fp16 = ort.InferenceSession(str(triton_repo / "tail" / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    from privinfer.serve import onnx_export

    fp32 = ort.InferenceSession(str(onnx_export.export_onnx("tail")), providers=["CPUExecutionProvider"])
    want = fp32.run([OUTPUT_NAME], {"embedding": embedding.astype(np.float32)})[0]
    assert np.array_equal(fp16.run([OUTPUT_NAME], {"embedding": embedding})[0], want)


def test_the_mlserver_export_has_settings_runtime_and_models(tmp_path):
    assert main(["export", "--format", "mlserver", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "settings.json").read_text())["parallel_workers"] == 0
    runtime = (tmp_path / "runtime.py").read_text()
    assert "class OnnxModel(MLModel)" in runtime
    assert "privinfer" not in runtime.split('"""', 2)[2] and "torch" not in runtime.split('"""', 2)[2]
    for name in export.SERVED_MODELS:
        settings = json.loads((tmp_path / name / "model-settings.json").read_text())
        assert settings["name"] == name and settings["implementation"] == "runtime.OnnxModel"
        assert (tmp_path / name / settings["parameters"]["uri"]).is_file()


def test_bad_export_requests_are_one_line_errors(tmp_path, capsys):
    afile = tmp_path / "file"
    afile.write_text("x")
    assert main(["export", "--format", "triton", str(afile)]) == 2
    assert f"export folder {afile} is a file" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="unknown export format 'torchserve'"):
        export.export_repository("torchserve", tmp_path)


# ---------------------------------------------------------------- Triton's python backend


class _FakeTritonUtils:
    """The few names of ``triton_python_backend_utils`` a python-backend model uses, as plain Python:
    a request is a dict of input name -> array."""

    class Tensor:
        def __init__(self, name: str, array: np.ndarray) -> None:
            self.name, self.array = name, array

        def as_numpy(self) -> np.ndarray:
            return self.array

    class InferenceResponse:
        def __init__(self, output_tensors=None, error=None) -> None:
            self.output_tensors, self.error = output_tensors, error

    class TritonError(Exception):
        pass

    @staticmethod
    def get_input_tensor_by_name(request: dict, name: str):
        return _FakeTritonUtils.Tensor(name, request[name]) if name in request else None


@pytest.fixture(scope="module")
def python_repo(tmp_path_factory):
    out = tmp_path_factory.mktemp("triton-python")
    assert main(["export", "--format", "triton", "--backend", "python", str(out)]) == 0
    return out


def _load_model_py(path, monkeypatch):
    import importlib.util
    import sys

    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", _FakeTritonUtils)
    spec = importlib.util.spec_from_file_location(f"model_{path.parent.parent.name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(export.SERVED_MODELS))
def test_the_python_backend_config_declares_the_same_tensors_with_backend_python(triton_repo, python_repo, name):
    python, onnxruntime = _config(python_repo / name), _config(triton_repo / name)
    assert python.backend == "python" and not python.platform
    assert (python.input, python.output, python.max_batch_size) == (
        onnxruntime.input,
        onnxruntime.output,
        onnxruntime.max_batch_size,
    )
    assert (python_repo / name / "1" / "model.py").is_file()
    assert (python_repo / name / "1" / "model.onnx").read_bytes() == (
        triton_repo / name / "1" / "model.onnx"
    ).read_bytes()


@pytest.mark.parametrize("name", sorted(export.SERVED_MODELS))
def test_the_python_backend_model_runs_its_graph_like_onnxruntime(python_repo, name, monkeypatch):
    config = _config(python_repo / name)
    module = _load_model_py(python_repo / name / "1" / "model.py", monkeypatch)
    model = module.TritonPythonModel()
    model.initialize({"model_repository": str(python_repo / name), "model_version": "1"})
    request = _valid_request(name, config)
    (response, broken) = model.execute([request, {}])  # the second request lacks its inputs
    session = ort.InferenceSession(str(python_repo / name / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    (want,) = session.run([OUTPUT_NAME], request)
    (tensor,) = response.output_tensors
    assert response.error is None and tensor.name == OUTPUT_NAME and np.array_equal(tensor.as_numpy(), want)
    assert broken.output_tensors is None and "NoneType" in str(broken.error), "a bad request is its own error"


def test_the_python_model_imports_neither_privinfer_nor_torch():
    code = export.TRITON_PYTHON_MODEL.read_text().split('"""', 2)[2]
    assert "privinfer" not in code and "torch" not in code


def test_a_backend_is_for_triton_only_and_must_be_known(tmp_path):
    with pytest.raises(ConfigError, match="only --format triton has backends"):
        export.export_repository("mlserver", tmp_path, backend="python")
    with pytest.raises(ConfigError, match="--backend 'tensorrt' is unknown; choose from: onnxruntime, python"):
        export.export_repository("triton", tmp_path, backend="tensorrt")
