"""The pipeline against a real NVIDIA Triton serving `privinfer export --format triton` (opt in: -m slow).

Two Triton set-ups, each skipped with the reason when it is not installed:

- ``python``: the ``tritonserver`` of the ``nvidia-pytriton`` wheel (installed by ``make test-slow``),
  which has only the python backend, serving ``export --backend python`` (``model.py`` running the
  same ONNX graphs with onnxruntime). Its python-backend stub reads numpy 1.x arrays, so the models
  run in an environment of their own (``$TRITON_PYTHON_ENV``, made by ``make triton-env``: numpy
  1.26 and onnxruntime); the stub finds it first on ``PATH``.
- ``onnxruntime``: a ``tritonserver`` with its onnxruntime backend (NVIDIA's containers,
  ``/opt/tritonserver``; or ``$TRITONSERVER`` and ``$TRITON_BACKENDS``), serving the default export.

Detections over Triton are compared with the local backend's by matching, as every other remote
backend is. A burst beyond a model's queue is refused by Triton as busy, and read so.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from skimage.data import astronaut

from matching import assert_same_detections
from privinfer.errors import ServerBusyCallError
from privinfer.pipeline import Pipeline, PipelineConfig
from privinfer.ports import free_loopback_ports
from privinfer.serve.export import TRITON_MAX_QUEUE, export_repository
from privinfer.serve.grpc_client import TRITON_QUEUE_FULL, GrpcPool, RemoteOptions

PIPELINE = {"sensitive": ("faces",), "learn_capacities": False}  # the default obfuscator: the patched model


@dataclass(frozen=True)
class Triton:
    """How to start one tritonserver: the binary, its backends folder, and its environment."""

    binary: Path
    backends: Path
    env: dict[str, str]


def _pytriton(work: Path) -> Triton:
    """The nvidia-pytriton wheel's tritonserver, with a backends folder holding its python backend
    and the stub for this Python, the models' environment first on PATH."""
    spec = importlib.util.find_spec("pytriton")
    if spec is None or spec.origin is None:
        pytest.skip("nvidia-pytriton is not installed (make test-slow installs it)")
    dist = Path(spec.origin).parent / "tritonserver"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = dist / "python_backend_stubs" / version / "triton_python_backend_stub"
    models_env = Path(os.environ.get("TRITON_PYTHON_ENV", "")).expanduser()
    if not os.environ.get("TRITON_PYTHON_ENV") or not (models_env / "bin" / "python").is_file():
        pytest.skip("no environment for Triton's python models: set $TRITON_PYTHON_ENV (make triton-env makes one)")
    backend = work / "backends" / "python"
    backend.mkdir(parents=True)
    for source in (dist / "backends" / "python" / "libtriton_python.so", stub):
        (backend / source.name).symlink_to(source)  # the stub finds its libraries by its real path
    shutil.copy(dist / "backends" / "python" / "triton_python_backend_utils.py", backend)
    libs = Path(spec.origin).parents[1] / "nvidia_pytriton.libs"
    env = {
        **os.environ,
        "PATH": f"{models_env / 'bin'}:{os.environ['PATH']}",
        "LD_LIBRARY_PATH": ":".join(p for p in (str(libs), os.environ.get("LD_LIBRARY_PATH", "")) if p),
        "PRIVINFER_TRITON_THREADS": "1",
    }
    return Triton(dist / "bin" / "tritonserver", work / "backends", env)


def _nvidia(work: Path) -> Triton:
    binary = os.environ.get("TRITONSERVER") or shutil.which("tritonserver") or "/opt/tritonserver/bin/tritonserver"
    backends = Path(os.environ.get("TRITON_BACKENDS", Path(binary).resolve().parents[1] / "backends"))
    if not Path(binary).is_file():
        pytest.skip("no tritonserver binary (set $TRITONSERVER, or run in NVIDIA's Triton container)")
    if not (backends / "onnxruntime").is_dir():
        pytest.skip(f"tritonserver has no onnxruntime backend under {backends} (set $TRITON_BACKENDS)")
    return Triton(Path(binary), backends, dict(os.environ))


SETUPS = {"python": _pytriton, "onnxruntime": _nvidia}


@pytest.fixture(scope="module", params=sorted(SETUPS))
def triton(request, tmp_path_factory):
    """A running tritonserver on loopback serving the export for its backend; yields its address."""
    work = tmp_path_factory.mktemp(f"triton-{request.param}")
    server = SETUPS[request.param](work)
    repository = work / "models"
    export_repository("triton", repository, backend=request.param)
    grpc_port, http_port, metrics_port = free_loopback_ports(3)
    command = [
        str(server.binary), "--model-repository", str(repository), "--backend-directory", str(server.backends),
        "--grpc-address", "127.0.0.1", "--grpc-port", str(grpc_port), "--http-address", "127.0.0.1",
        "--http-port", str(http_port), "--metrics-address", "127.0.0.1", "--metrics-port", str(metrics_port),
    ]  # fmt: skip
    log = work / "triton.log"
    with open(log, "w") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=server.env)
    try:
        yield f"127.0.0.1:{grpc_port}", log
    finally:
        process.terminate()
        process.wait(timeout=60)


def _run(pipeline: Pipeline, frames):
    results = []
    for frame in frames:
        pipeline.reset()
        results.append(pipeline(frame))
    return results


@pytest.mark.slow
def test_the_pipeline_over_triton_finds_what_the_local_backend_finds(triton, dog_rgb):
    address, log = triton
    frames = [astronaut(), dog_rgb]
    pool = GrpcPool([address], options=RemoteOptions(connect_timeout_s=180))
    with Pipeline(PipelineConfig(servers=(address,), **PIPELINE), pool=pool) as pipeline:
        remote = _run(pipeline, frames)
    with Pipeline(PipelineConfig(servers=1, **PIPELINE)) as pipeline:
        local = _run(pipeline, frames)
    assert any(t.payload == "patched" for t in remote[0].tiles), "the astronaut's face went as a feature patch"
    for got, want in zip(remote, local, strict=True):
        assert {t.server for t in got.tiles if t.server} == {address}, log.read_text()[-2000:]
        assert got.detections, "the frames hold objects the model finds"
        assert_same_detections(got.detections, want.detections, box_tol=1e-2, score_tol=1e-3)


@pytest.mark.slow
def test_a_burst_beyond_triton_s_queue_is_refused_as_busy(triton, dog_rgb):
    address, _ = triton
    pixels = np.stack([dog_rgb[:320, :320]])
    refused, answered = [], 0
    with GrpcPool([address], options=RemoteOptions(connect_timeout_s=180)) as pool:
        for _ in range(5):  # bursts of many times the queue, until Triton refuses some
            burst = [pool.infer(address, "full", {"pixels": pixels}) for _ in range(8 * TRITON_MAX_QUEUE)]
            for call in burst:
                error = call.exception(timeout=300)
                if error is None:
                    answered += 1
                    assert call.result().raw.shape[0] == 1
                else:
                    refused.append(error)
            if refused:
                break
    assert refused and answered, (len(refused), answered)
    assert all(isinstance(error, ServerBusyCallError) for error in refused), refused[:3]
    assert TRITON_QUEUE_FULL.search(str(refused[0])), refused[0]
