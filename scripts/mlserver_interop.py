"""privinfer's gRPC client against a server it did not write: Seldon MLServer 1.7.1.

MLServer serves the folder `privinfer export --format mlserver` writes, unchanged (the server
models and privinfer's runtime for them, ``src/privinfer/serve/mlserver_runtime.py``), on loopback
ports given through MLServer's own ``MLSERVER_*`` environment variables, and answers the Open
Inference Protocol v2 over gRPC. The private pipeline then runs, unchanged, with MLServer as its only server, on the
darknet dog photo (raw tiles -> ``full``) and scikit-image's astronaut (a face: obfuscated
embeddings -> ``tail``); its detections must match the local thread backend's.

MLServer pins things the project must not inherit (fastapi 0.115, ...), so it lives in a venv of
its own, ``$PRIVINFER_CACHE/mlserver-venv`` (built on first run, about a minute and a half).

    .venv/bin/python scripts/mlserver_interop.py [--calls 30]

Exit status: 0 when the detections match, 1 when they do not, 2 when MLServer could not be set
up or started.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from skimage.data import astronaut

from privinfer import assets
from privinfer.errors import PrivinferError
from privinfer.images import read_image
from privinfer.pipeline import Pipeline, PipelineConfig
from privinfer.ports import free_loopback_ports
from privinfer.serve.export import SERVED_MODELS, export_repository
from privinfer.serve.grpc_client import GrpcPool, RemoteOptions

REQUIREMENTS = ("mlserver==1.7.1", "onnxruntime==1.32.0", "numpy==2.4.6")
PIPELINE = {"obfuscator": "channel-mask", "sensitive": ("faces",)}
BOX_TOLERANCE, SCORE_TOLERANCE = 1e-2, 1e-3  # onnxruntime vs torch raw outputs differ by < 1e-4


class InteropError(PrivinferError):
    """MLServer could not be installed, configured or started; the message says which step."""


def ensure_venv(venv: Path) -> Path:
    """The MLServer venv holding exactly REQUIREMENTS (created or updated); returns its bin folder."""
    python, stamp = venv / "bin" / "python", venv / ".privinfer-requirements"
    wanted = "\n".join(REQUIREMENTS)
    if python.is_file() and stamp.is_file() and stamp.read_text() == wanted:
        return python.parent
    if not python.is_file():
        print(f"creating {venv}", flush=True)
        _run([sys.executable, "-m", "venv", "--clear", str(venv)], "creating the MLServer venv")
    print(f"installing {' '.join(REQUIREMENTS)} (about a minute and a half)", flush=True)
    _run([str(python), "-m", "pip", "install", "--quiet", *REQUIREMENTS], "pip install in the MLServer venv")
    stamp.write_text(wanted)
    return python.parent


def start_mlserver(bin_dir: Path, folder: Path, grpc_port: int, log: Path) -> subprocess.Popen:
    """MLServer on the exported ``folder`` as it is, listening on loopback only."""
    http, metrics = free_loopback_ports(2)
    ports = {"MLSERVER_HOST": "127.0.0.1", "MLSERVER_GRPC_PORT": str(grpc_port), "MLSERVER_HTTP_PORT": str(http)}
    environment = {**os.environ, **ports, "MLSERVER_METRICS_PORT": str(metrics)}
    with open(log, "w") as handle:  # the child keeps its own descriptor
        return subprocess.Popen(
            [str(bin_dir / "mlserver"), "start", str(folder)],
            cwd=folder,
            env=environment,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )


def compare(remote, local) -> list[str]:
    """What differs between two frames' detections (empty when they match within tolerance)."""
    key = lambda d: (d.label, round(d.box.x1), round(d.box.y1))  # noqa: E731
    if [d.label for d in sorted(remote, key=key)] != [d.label for d in sorted(local, key=key)]:
        return [f"labels {sorted(d.label for d in remote)} != {sorted(d.label for d in local)}"]
    problems = []
    for a, b in zip(sorted(remote, key=key), sorted(local, key=key), strict=True):
        if abs(a.score - b.score) > SCORE_TOLERANCE or not np.allclose(
            a.box.as_list(), b.box.as_list(), atol=BOX_TOLERANCE
        ):
            problems.append(f"{a.label}: {a.score:.4f} {a.box.as_list()} != {b.score:.4f} {b.box.as_list()}")
    return problems


def check(calls: int) -> int:
    frames = {"astronaut": astronaut(), "dog.jpg": read_image(assets.require("dog.jpg")).pixels}
    bin_dir = ensure_venv(assets.cache_dir() / "mlserver-venv")
    with tempfile.TemporaryDirectory(prefix="privinfer-mlserver-") as tmp:
        folder, log = Path(tmp) / "models", Path(tmp) / "mlserver.log"
        export_repository("mlserver", folder)
        port = free_loopback_ports(1)[0]
        server = start_mlserver(bin_dir, folder, port, log)
        address = f"127.0.0.1:{port}"
        try:
            try:
                pool = GrpcPool([address], options=RemoteOptions(connect_timeout_s=120))
            except PrivinferError as error:
                tail = log.read_text()[-3000:]
                raise InteropError(f"MLServer did not come up on {address}: {error}\n{tail}") from None
            print(f"MLServer 1.7.1 serving {', '.join(SERVED_MODELS)} on {address}", flush=True)
            latency = _tail_latency(pool, address, calls)
            with Pipeline(PipelineConfig(servers=(address,), **PIPELINE), pool=pool) as remote_pipeline:
                remote = {name: _fresh(remote_pipeline)(rgb) for name, rgb in frames.items()}
        finally:
            server.terminate()
            server.wait(timeout=30)
    with Pipeline(PipelineConfig(servers=1, **PIPELINE)) as local_pipeline:
        local = {name: _fresh(local_pipeline)(rgb) for name, rgb in frames.items()}

    print(f"tail, batch of 2 embeddings 128x16x16 FP16: median {latency:.1f} ms per call over {calls} calls")
    failed = False
    for name, result in remote.items():
        kinds = sorted({t.treatment for t in result.tiles})
        problems = compare(result.detections, local[name].detections)
        servers = {t.server for t in result.tiles if t.server}
        print(f"{name}: {len(result.detections)} detections, tiles {kinds}, served by {sorted(servers)}")
        for problem in problems:
            print(f"  MISMATCH {problem}")
        failed |= bool(problems) or servers != {address}
    print("FAILED: MLServer results differ" if failed else "OK: the pipeline over MLServer matches the local servers")
    return 1 if failed else 0


def _tail_latency(pool: GrpcPool, address: str, calls: int) -> float:
    batch = np.random.default_rng(0).standard_normal((2, 128, 16, 16)).astype(np.float16)
    pool.infer(address, "tail", {"embedding": batch}).result()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        pool.infer(address, "tail", {"embedding": batch}).result()
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.median(times))


def _fresh(pipeline: Pipeline) -> Pipeline:
    pipeline.reset()
    return pipeline


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
        raise InteropError(f"{what} failed (exit {result.returncode}): {' '.join(command)}\n{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=30, help="tail calls timed for the latency line")
    args = parser.parse_args(argv)
    try:
        return check(args.calls)
    except PrivinferError as error:
        print(f"mlserver interop: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
