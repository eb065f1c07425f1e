"""The pipeline against NVIDIA Triton serving `privinfer export --format triton` (opt in: -m slow).

Runs only where a ``tritonserver`` with its onnxruntime backend is installed (NVIDIA's container
images: ``/opt/tritonserver``; or ``$TRITONSERVER`` and ``$TRITON_BACKENDS``). No registry package
provides one here (see the README, "Serving on Triton, KServe or MLServer"), so on this machine it
is skipped, naming what is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from skimage.data import astronaut

from privinfer.pipeline import Pipeline, PipelineConfig
from privinfer.ports import free_loopback_ports
from privinfer.serve.export import export_repository
from privinfer.serve.grpc_client import GrpcPool, RemoteOptions

PIPELINE = {"obfuscator": "channel-mask", "sensitive": ("faces",)}


def _triton() -> tuple[Path, Path]:
    binary = os.environ.get("TRITONSERVER") or shutil.which("tritonserver") or "/opt/tritonserver/bin/tritonserver"
    backends = Path(os.environ.get("TRITON_BACKENDS", Path(binary).resolve().parents[1] / "backends"))
    if not Path(binary).is_file():
        pytest.skip("no tritonserver binary (set $TRITONSERVER, or run in NVIDIA's Triton container)")
    if not (backends / "onnxruntime").is_dir():
        pytest.skip(f"tritonserver has no onnxruntime backend under {backends} (set $TRITON_BACKENDS)")
    return Path(binary), backends


def _key(detection):
    return (detection.label, round(detection.box.x1), round(detection.box.y1))


@pytest.mark.slow
def test_pipeline_runs_unchanged_against_triton(tmp_path, dog_rgb):
    binary, backends = _triton()
    repository = tmp_path / "models"
    export_repository("triton", repository)
    grpc_port, http_port, metrics_port = free_loopback_ports(3)
    command = [
        str(binary), "--model-repository", str(repository), "--backend-directory", str(backends),
        "--grpc-address", "127.0.0.1", "--grpc-port", str(grpc_port), "--http-address", "127.0.0.1",
        "--http-port", str(http_port), "--metrics-address", "127.0.0.1", "--metrics-port", str(metrics_port),
    ]  # fmt: skip
    log = tmp_path / "triton.log"
    with open(log, "w") as handle:
        server = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT)
    address = f"127.0.0.1:{grpc_port}"
    frames = [astronaut(), dog_rgb]
    try:
        pool = GrpcPool([address], options=RemoteOptions(connect_timeout_s=120))
        with Pipeline(PipelineConfig(servers=(address,), **PIPELINE), pool=pool) as pipeline:
            remote = []
            for frame in frames:
                pipeline.reset()
                remote.append(pipeline(frame))
    finally:
        server.terminate()
        server.wait(timeout=60)
    with Pipeline(PipelineConfig(servers=1, **PIPELINE)) as pipeline:
        local = []
        for frame in frames:
            pipeline.reset()
            local.append(pipeline(frame))
    assert {t.treatment for t in remote[0].tiles} >= {"privatized"}, "the astronaut's face went to Triton's tail"
    for got, want in zip(remote, local, strict=True):
        assert {t.server for t in got.tiles if t.server} == {address}
        assert len(got.detections) == len(want.detections), log.read_text()[-2000:]
        for a, b in zip(sorted(got.detections, key=_key), sorted(want.detections, key=_key), strict=True):
            assert a.label == b.label and abs(a.score - b.score) <= 1e-3
            assert np.allclose(a.box.as_list(), b.box.as_list(), atol=1e-2)
