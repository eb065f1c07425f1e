"""Frame latency over 1..4 real servers on the namespace testbed, against the ideal (needs root).

1. One unshaped server: its compute per tile (its own timing of a frame-sized batch) and the
   per-request protocol overhead (round trip minus compute, one tile per request, over a veth).
2. For each setting (unshaped links: compute-bound; equal shaped links: bandwidth-bound; links of
   unequal rates: heterogeneous) a testbed of 4 servers is brought up; pipelines over the first
   1, 2, ... 4 servers run warm-up frames (their capacity models learn the servers), then take
   measured frames of the dog photo in turn. Ideal = total compute / (N x one server's speed) +
   bytes both ways / (the N links' summed rate), where the bytes are the tiles sent plus the raw
   outputs returned. "Ideal here" caps the compute term's N at this machine's cores: N servers on
   C < N cores cannot compute faster than C of them.
"""

from __future__ import annotations

import os
import statistics
import time
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

import numpy as np

from privinfer import assets, testbed
from privinfer.bench.context import BenchContext
from privinfer.bench.registry import Section, register
from privinfer.errors import TestbedError
from privinfer.images import read_image
from privinfer.models import nanodet
from privinfer.pipeline import Pipeline, PipelineConfig
from privinfer.plotting import save_figure
from privinfer.serve import RemoteOptions, create_pool
from privinfer.serve.grpc_client import GrpcPool
from privinfer.testbed import network
from privinfer.types import Treatment

MAX_SERVERS = 4
TILE = 128  # 12 tiles per frame at the work size: divisible by 1..4 servers
BANDWIDTH = "10mbit"  # each link in the bandwidth-bound setting
UNEQUAL = ("40mbit", "20mbit", "10mbit", "5mbit")  # the heterogeneous setting, fastest link first
RAW_ONLY = {"obfuscator": "unaltered", "sensitive": ()}  # no client-side detectors: the servers dominate


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
        for _ in range(2):
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


def run_frames(addresses: tuple[str, ...], frame: np.ndarray, warmup: int, frames: int, device: str) -> list[dict]:
    """The frame over the first 1, 2, ... len(addresses) servers: one pipeline each, taking the
    frame in turn (so that a change of the machine's load hits every N alike)."""
    config = PipelineConfig(servers=addresses, tile=TILE, device=device, **RAW_ONLY)
    counts = range(1, len(addresses) + 1)
    with ExitStack() as stack:
        pipelines = []
        for count in counts:
            pool = create_pool("threads", addresses[:count], remote=RemoteOptions(deadline_s=120))
            pipelines.append(stack.enter_context(Pipeline(replace(config, servers=addresses[:count]), pool=pool)))
        for _ in range(warmup):  # the capacity models learn the servers
            for pipeline in pipelines:
                pipeline(frame)
        results: list[list] = [[] for _ in pipelines]
        for index in range(frames):
            shift = index % len(pipelines)
            for n in [*range(shift, len(pipelines)), *range(shift)]:
                results[n].append(pipelines[n](frame))
    rows = []
    for count, measured in zip(counts, results, strict=True):
        sent = [t for t in measured[-1].tiles if t.treatment != Treatment.DISCARDED]
        rows.append({
            "servers_ms": statistics.median(r.timings_ms["servers"] for r in measured),
            "total_ms": statistics.median(r.timings_ms["total"] for r in measured),
            "tiles": len(sent),
            "request_bytes": sum(t.bytes for t in sent),
            "tiles_per_server": [sum(t.server == a for t in sent) for a in addresses[:count]],
        })  # fmt: skip
    return rows


def ideal_ms(tiles: int, tile_ms: float, wire_bytes: int, servers: int, rate_bits: float | None, cores: int):
    """(ideal, ideal on this machine's cores) ms for ``tiles`` tiles over ``servers`` servers of equal
    compute whose links add up to ``rate_bits`` (None: unshaped, transfer not counted)."""
    transfer = 0.0 if rate_bits is None else wire_bytes * 8 / rate_bits * 1e3
    compute = tiles * tile_ms
    return compute / servers + transfer, compute / min(servers, cores) + transfer


def _setting(
    ctx: BenchContext, bandwidths: tuple[str | None, ...], server: dict | None, frame: np.ndarray
) -> tuple[dict, list]:
    """Bring a testbed of MAX_SERVERS up (link i shaped to ``bandwidths[i]``, None: unshaped), measure
    1..MAX_SERVERS, take it down. Returns (server, rows)."""
    quick = ctx.options.quick
    # A quarter of the frame count: the 10 mbit setting costs about 4.6 s per frame over N = 1..4.
    frames, warmup, calls = (2, 1, 5) if quick else (max(5, ctx.frame_count // 4), 3, 30)
    cores = os.cpu_count() or 1
    specs = tuple(testbed.ServerSpec(bandwidth, threads=1) for bandwidth in bandwidths)
    bed = testbed.up(testbed.TestbedConfig(servers=specs, ready_timeout_s=300).validate())
    try:
        counts = range(1, MAX_SERVERS + 1)
        runs = run_frames(bed.addresses, frame, warmup, frames, ctx.options.device)
        input_size = PipelineConfig(tile=TILE).input_size
        server = server or measure_server(bed.addresses[0], input_size, runs[0]["tiles"], calls)
    finally:
        testbed.down()
    rows = []
    for count, measured in zip(counts, runs, strict=True):
        wire = measured["request_bytes"] + measured["tiles"] * output_bytes(input_size)
        shaped = bandwidths[:count]
        rate = None if None in shaped else sum(testbed.rate_bits(b) for b in shaped)
        ideal, ideal_here = ideal_ms(measured["tiles"], server["tile_compute_ms"], wire, count, rate, cores)
        rows.append({"servers": count, **measured, "wire_bytes": wire, "ideal_ms": ideal, "ideal_here_ms": ideal_here,
                     "frames": frames})  # fmt: skip
    for row in rows:
        row["speedup"] = rows[0]["servers_ms"] / row["servers_ms"]
        row["latency_over_ideal"] = row["servers_ms"] / row["ideal_here_ms"]
    return server, rows


def run(ctx: BenchContext) -> dict:
    reason = testbed.unavailable()
    if reason is None and (network.our_namespaces() or network.our_devices()):
        reason = "a testbed is already up (another run or test uses it); `privinfer testbed down` frees it"
    if reason:
        ctx.progress(f"scaling: skipped, {reason}")
        return {"skipped": reason}
    cores = os.cpu_count() or 1
    frame = read_image(assets.require("dog.jpg")).pixels
    settings: dict[str, tuple[str | None, ...]] = {"unshaped (compute-bound)": (None,) * MAX_SERVERS}
    if not ctx.options.quick:
        settings[f"{BANDWIDTH} links (bandwidth-bound)"] = (BANDWIDTH,) * MAX_SERVERS
        settings[f"unequal links {'/'.join(b.removesuffix('mbit') for b in UNEQUAL)} mbit"] = UNEQUAL
    out: dict = {
        "tile": TILE,
        "cores": cores,
        "note": f"This machine has {cores} CPU cores: with unshaped links the servers compete for them, so "
        f"compute-bound scaling beyond {cores} servers cannot show here ('ideal here' caps N at {cores})"
        + (
            "; the bandwidth-bound settings show what parallel links give, equal or not (servers are added "
            "fastest link first)"
            if len(settings) > 1
            else ""
        )
        + ". Other load on the machine slows every figure.",
        "settings": {},
    }
    server = None
    for name, bandwidths in settings.items():
        ctx.progress(f"scaling: {name}, testbed of {MAX_SERVERS} servers")
        try:
            server, rows = _setting(ctx, bandwidths, server, frame)
        except TestbedError as error:  # e.g. a testbed came up meanwhile: it is not ours to take down
            out["settings"][name] = {"skipped": str(error)}
            continue
        out["settings"][name] = rows
    out["server"] = server
    return out


def compute_bound(result: dict) -> list[dict] | None:
    """The unshaped setting's rows (None when skipped)."""
    rows = result.get("settings", {}).get("unshaped (compute-bound)")
    return rows if isinstance(rows, list) else None


def markdown(result: dict) -> list[str]:
    if "skipped" in result:
        return [f"Skipped: {result['skipped']}."]
    lines = [result["note"], ""]
    server = result.get("server")
    if server:
        lines += [
            f"One server, {result['tile']} px tiles: {server['tile_compute_ms']:.1f} ms compute per tile in a "
            f"frame-sized batch; one tile per request: round trip {server['single_round_trip_ms']:.1f} ms, protocol "
            f"overhead {server['request_overhead_ms']:.1f} ms (p95 {server['request_overhead_p95_ms']:.1f}).",
            "",
        ]
    for name, rows in result["settings"].items():
        if not isinstance(rows, list):
            lines += [f"{name}: skipped, {rows['skipped']}", ""]
            continue
        header = "| N | servers ms | frame ms | ideal ms | ideal here ms | over ideal here | speed-up | tiles each |"
        wire_mb = rows[0]["wire_bytes"] / 1e6
        lines += [f"**{name}**, {rows[0]['tiles']} tiles, {wire_mb:.2f} MB on the wire per frame", "", header]
        lines.append("|---" * 8 + "|")
        lines += [
            f"| {r['servers']} | {r['servers_ms']:.1f} | {r['total_ms']:.1f} | {r['ideal_ms']:.1f} | "
            f"{r['ideal_here_ms']:.1f} | {r['latency_over_ideal']:.2f} | {r['speedup']:.2f}x | "
            f"{r['tiles_per_server']} |"
            for r in rows
        ]
        lines.append("")
    return lines


def plot(result: dict, out: Path) -> str | None:
    import matplotlib.pyplot as plt

    settings = {n: rows for n, rows in result.get("settings", {}).items() if isinstance(rows, list)}
    if not settings:
        return None
    fig, axes = plt.subplots(1, len(settings), figsize=(5.5 * len(settings), 4), squeeze=False)
    for axis, (name, rows) in zip(axes[0], settings.items(), strict=True):
        counts = [r["servers"] for r in rows]
        axis.plot(counts, [r["servers_ms"] for r in rows], "o-", label="measured (servers stage)")
        axis.plot(counts, [r["ideal_ms"] for r in rows], "k--", label="ideal")
        axis.plot(counts, [r["ideal_here_ms"] for r in rows], "k:", label=f"ideal on {result['cores']} cores")
        axis.set_xticks(counts)
        axis.set_xlabel("servers")
        axis.set_ylabel("ms per frame")
        axis.set_title(name, fontsize=9)
        axis.legend(fontsize=8)
    return save_figure(fig, out / "scaling.png")


SECTION = register(Section("scaling", "Scaling over testbed servers", run, markdown, plot))
