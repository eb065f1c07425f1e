"""Frame latency over 1..N real servers on the network testbed, against the ideal (needs root).

1. One unshaped server: its compute per tile (its own timing of a frame-sized batch) and the
   per-request protocol overhead (round trip minus compute, one tile per request, over a veth).
2. For each setting (unshaped links: compute-bound; equal shaped links: bandwidth-bound) a testbed
   of N servers is brought up, the pipeline runs warm-up frames (the capacity model learns the
   servers) and then measured frames of the dog photo over the first 1, 2, ... N servers.
   Ideal = total compute / (N x one server's speed) + bytes both ways / (N x link rate), where the
   bytes are the tiles sent plus the raw outputs returned (N, anchors, 124 float32 per tile).
   "ideal here" caps the compute term's N at this machine's cores: N servers on C < N cores
   cannot compute faster than C of them.

    .venv/bin/python scripts/bench_testbed.py [--max-servers 4] [--bandwidth 10mbit] [--tile 128]
        [--frames 5] [--warmup 3] [--calls 30] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import numpy as np

from privinfer import assets, testbed
from privinfer.images import read_image
from privinfer.models import nanodet
from privinfer.pipeline import Pipeline, PipelineConfig
from privinfer.serve import RemoteOptions, create_pool
from privinfer.serve.grpc_client import GrpcPool
from privinfer.types import Treatment

RAW_ONLY = {"obfuscator": "unaltered", "sensitive": ()}  # no client-side detectors: servers dominate


def output_bytes(input_size: int) -> int:
    """Bytes of one tile's raw output as a server returns it: (anchors, 124) float32."""
    anchors = sum((input_size // stride) ** 2 for stride in nanodet.STRIDES)
    return anchors * nanodet.RAW_WIDTH * 4


def measure_server(address: str, input_size: int, tiles: int, calls: int) -> dict:
    """Per-tile compute (frame-sized batches) and per-request overhead (single tiles) on one server."""
    rng = np.random.default_rng(0)
    frame_batch = rng.integers(0, 256, (tiles, input_size, input_size, 3), dtype=np.uint8)
    one = frame_batch[:1]
    with GrpcPool([address], options=RemoteOptions(connect_timeout_s=60)) as pool:
        for _ in range(3):
            pool.infer(address, "full", frame_batch).result()
        batch_ms = [pool.infer(address, "full", frame_batch).result().compute_ms for _ in range(max(3, calls // 5))]
        round_trips, computes = [], []
        for _ in range(calls):
            start = time.perf_counter()
            answer = pool.infer(address, "full", one).result()
            round_trips.append((time.perf_counter() - start) * 1e3)
            computes.append(answer.compute_ms)
    overheads = [r - c for r, c in zip(round_trips, computes, strict=True)]
    return {
        "tile_compute_ms": statistics.median(batch_ms) / tiles,
        "single_round_trip_ms": statistics.median(round_trips),
        "single_compute_ms": statistics.median(computes),
        "request_overhead_ms": statistics.median(overheads),
        "request_overhead_p95_ms": float(np.percentile(overheads, 95)),
    }


def run_frames(addresses: tuple[str, ...], frame: np.ndarray, tile: int, warmup: int, frames: int) -> dict:
    pool = create_pool("threads", addresses, remote=RemoteOptions(deadline_s=120))
    with Pipeline(PipelineConfig(servers=addresses, tile=tile, **RAW_ONLY), pool=pool) as pipeline:
        for _ in range(warmup):
            pipeline(frame)
        results = [pipeline(frame) for _ in range(frames)]
    sent = [t for t in results[-1].tiles if t.treatment != Treatment.DISCARDED]
    return {
        "servers_ms": statistics.median(r.timings_ms["servers"] for r in results),
        "total_ms": statistics.median(r.timings_ms["total"] for r in results),
        "tiles": len(sent),
        "request_bytes": sum(t.bytes for t in sent),
        "tiles_per_server": [sum(t.server == a for t in sent) for a in addresses],
    }


def ideal_ms(tiles: int, tile_ms: float, wire_bytes: int, servers: int, rate_bits: float | None, cores: int) -> tuple:
    transfer = 0.0 if rate_bits is None else wire_bytes * 8 / (servers * rate_bits) * 1e3
    compute = tiles * tile_ms
    return compute / servers + transfer, compute / min(servers, cores) + transfer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-servers", type=int, default=4)
    parser.add_argument("--bandwidth", default="10mbit", help="each link's rate in the bandwidth-bound setting")
    parser.add_argument("--tile", type=int, default=128, help="tile size (128: 12 tiles per frame, divisible by 1-4)")
    parser.add_argument("--frames", type=int, default=5, help="measured frames per N")
    parser.add_argument("--warmup", type=int, default=3, help="frames first, for the capacity model to learn")
    parser.add_argument("--calls", type=int, default=30, help="single-tile requests for the protocol overhead")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()

    reason = testbed.unavailable()
    if reason:
        raise SystemExit(f"bench_testbed: {reason}")
    cores = os.cpu_count() or 1
    frame = read_image(assets.require("dog.jpg")).pixels
    input_size = PipelineConfig(tile=args.tile).input_size
    report: dict = {
        "machine": f"{platform.machine()}, {cores} cores, load average {os.getloadavg()[0]:.1f} at start",
        "tile": args.tile,
        "bandwidth": args.bandwidth,
        "settings": {},
    }
    notes = [
        f"This machine has {cores} CPU cores: with unshaped links the servers compete for them, so compute-bound "
        f"scaling beyond {cores} servers cannot show here ('ideal here' caps N at {cores}); the bandwidth-bound "
        "setting shows what parallel links give. Other load on the machine slows every figure."
    ]
    print(notes[0], "\n")

    servers_counts = range(1, args.max_servers + 1)
    settings = {"unshaped (compute-bound)": None, f"{args.bandwidth} links (bandwidth-bound)": args.bandwidth}
    try:
        for name, bandwidth in settings.items():
            specs = [testbed.ServerSpec(bandwidth, threads=1)] * args.max_servers
            bed = testbed.up(testbed.TestbedConfig(servers=tuple(specs), ready_timeout_s=300).validate())
            runs = [run_frames(bed.addresses[:n], frame, args.tile, args.warmup, args.frames) for n in servers_counts]
            if "server" not in report:  # the first setting is unshaped: the server's own speed, nothing else
                report["server"] = measure_server(bed.addresses[0], input_size, runs[0]["tiles"], args.calls)
                _print_server(report["server"], input_size)
            tile_ms = report["server"]["tile_compute_ms"]
            rate = None if bandwidth is None else testbed.rate_bits(bandwidth)
            rows = []
            for count, measured in zip(servers_counts, runs, strict=True):
                wire = measured["request_bytes"] + measured["tiles"] * output_bytes(input_size)
                ideal, ideal_here = ideal_ms(measured["tiles"], tile_ms, wire, count, rate, cores)
                rows.append({"servers": count, **measured, "wire_bytes": wire, "ideal_ms": ideal,
                             "ideal_here_ms": ideal_here})  # fmt: skip
            for row in rows:
                row["speedup"] = rows[0]["servers_ms"] / row["servers_ms"]
            report["settings"][name] = rows
            testbed.down()
            _print_table(name, rows)
    finally:
        testbed.down()
    report["notes"] = notes
    if args.json:
        with open(args.json, "w") as out:
            json.dump(report, out, indent=2)
        print(f"figures written to {args.json}")


def _print_server(server: dict, input_size: int) -> None:
    print(
        f"one server, {input_size}px tiles: compute {server['tile_compute_ms']:.1f} ms/tile in a frame-sized batch; "
        f"one tile per request: round trip {server['single_round_trip_ms']:.1f} ms, compute "
        f"{server['single_compute_ms']:.1f} ms, protocol overhead {server['request_overhead_ms']:.1f} ms "
        f"(p95 {server['request_overhead_p95_ms']:.1f})\n"
    )


def _print_table(name: str, rows: list[dict]) -> None:
    print(f"{name}: {rows[0]['tiles']} tiles per frame, {rows[0]['wire_bytes'] / 1e6:.2f} MB on the wire per frame")
    print(f"{'N':>3}{'servers ms':>12}{'frame ms':>10}{'ideal ms':>10}{'ideal here':>12}{'speed-up':>10}  tiles each")
    for row in rows:
        print(
            f"{row['servers']:>3}{row['servers_ms']:>12.1f}{row['total_ms']:>10.1f}{row['ideal_ms']:>10.1f}"
            f"{row['ideal_here_ms']:>12.1f}{row['speedup']:>9.2f}x  {row['tiles_per_server']}"
        )
    print()


if __name__ == "__main__":
    main()
