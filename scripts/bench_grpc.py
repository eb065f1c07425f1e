"""Per-request cost of the gRPC transport, and server compute time per runtime, on this machine.

For each runtime a `privinfer serve` subprocess listens on loopback; this process sends it, one
call at a time, a batch of two tail embeddings of a 256 px tile (FP16 128x32x32, as the pipeline
sends them) and a batch of two raw 256 px tiles (UINT8 256x256x3). Round trip: from building the
request to the decoded raw outputs. Compute: the server's own timing of the model call (returned
in the response). Overhead = round trip - compute: serialisation, gRPC, loopback TCP, validation.

    .venv/bin/python scripts/bench_grpc.py [--calls 50] [--runtimes onnxruntime,torch] [--threads N]
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time

import numpy as np

from privinfer.serve.grpc_client import GrpcPool, RemoteOptions

WARMUP = 5
TILE = 256


def batches() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "tail": {"embedding": rng.standard_normal((2, 128, TILE // 8, TILE // 8)).astype(np.float16)},
        "full": {"pixels": rng.integers(0, 256, (2, TILE, TILE, 3), dtype=np.uint8)},
    }


def measure(
    pool: GrpcPool, address: str, model: str, batch: dict[str, np.ndarray], calls: int
) -> dict[str, list[float]]:
    for _ in range(WARMUP):
        pool.infer(address, model, batch).result()
    times: dict[str, list[float]] = {"round trip": [], "compute": [], "overhead": []}
    for _ in range(calls):
        start = time.perf_counter()
        answer = pool.infer(address, model, batch).result()
        round_trip = (time.perf_counter() - start) * 1e3
        times["round trip"].append(round_trip)
        times["compute"].append(answer.compute_ms)
        times["overhead"].append(round_trip - answer.compute_ms)
    return times


def start_server(runtime: str, threads: int | None) -> tuple[subprocess.Popen, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "privinfer.cli", "serve", "--port", str(port), "--runtime", runtime]
    command += ["--threads", str(threads)] if threads else []
    return subprocess.Popen(command, stdout=subprocess.DEVNULL), f"127.0.0.1:{port}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--runtimes", default="onnxruntime,torch")
    parser.add_argument("--threads", type=int, default=None, help="server intra-op threads (default: all cores)")
    args = parser.parse_args()

    print(f"{'runtime':<12}{'model':<6}{'request':>10}  {'what':<11}{'median ms':>10}{'p95 ms':>9}")
    for runtime in args.runtimes.split(","):
        server, address = start_server(runtime, args.threads)
        try:
            with GrpcPool([address], options=RemoteOptions(connect_timeout_s=120)) as pool:
                for model, batch in batches().items():
                    for what, values in measure(pool, address, model, batch, args.calls).items():
                        size = f"{sum(a.nbytes for a in batch.values()) / 1024:.0f} KiB"
                        median, p95 = np.median(values), np.percentile(values, 95)
                        print(f"{runtime:<12}{model:<6}{size:>10}  {what:<11}{median:>10.2f}{p95:>9.2f}")
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
