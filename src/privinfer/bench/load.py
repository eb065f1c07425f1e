"""Many clients at once: 1, 2, 4 and 8 concurrent client streams against 2 `privinfer serve` servers.

The servers are real `privinfer serve` processes on loopback (onnxruntime, one intra-op thread, the
default in-flight limit), started once for the section. Each stream is a process of its own running
the private pipeline (faces, channel-mask) over its own gRPC pool to both servers, looping scene
frames for a bounded time, all streams started together. Per stream: fps, p50/p99 frame latency
(and the p50 of each half of the run, to see latency growing), frames lost (a frame that got
neither a result with every chunk answered by a server nor an explicit error: must be 0), frames
that failed with an explicit error, and the busy refusals its calls got (each re-sent elsewhere by
dispatch). Per run: each server's RSS before the streams started and after they ended.
"""

from __future__ import annotations

import queue
import re
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from privinfer.bench.context import BenchContext
from privinfer.bench.registry import Section, register
from privinfer.errors import ConfigError, PrivinferError

STREAMS = (1, 2, 4, 8)
QUICK_STREAMS = (1, 2)
SECONDS, QUICK_SECONDS = 20.0, 1.0  # measured time per stream count
FRAME_SIZE = (640, 480)
SERVERS = 2
START_TIMEOUT_S = 300.0  # servers and client processes load their models on a busy machine
_SERVING = re.compile(r"privinfer serving .* on (?P<address>127\.0\.0\.1:\d+) ")


@dataclass(frozen=True)
class StreamPlan:
    """What one client stream process does: its servers, how long, and with which frames."""

    addresses: tuple[str, ...]
    seconds: float
    frames: int


def run_stream(plan: StreamPlan, ready, go, results) -> None:
    """One client stream (in its own process): load, say ready, wait for go, then stream frames."""
    import torch

    from privinfer.bench.frames import scene_frames
    from privinfer.pipeline import Pipeline, PipelineConfig
    from privinfer.serve.grpc_client import GrpcPool

    torch.set_num_threads(1)  # eight streams on two cores: more threads only wait on each other
    frames = scene_frames(plan.frames, FRAME_SIZE).images
    pool = GrpcPool(plan.addresses)
    config = PipelineConfig(servers=plan.addresses, obfuscator="channel-mask", sensitive=("faces",))
    latencies, failures, attempted = [], [], 0
    with Pipeline(config, pool=pool) as pipeline:
        pipeline(frames[0])  # warm-up: first calls, the capacity model's first measurements
        pool.refusals = dict.fromkeys(pool.refusals, 0)
        ready.put(True)
        go.wait()
        started = time.perf_counter()
        while time.perf_counter() - started < plan.seconds:
            frame = frames[attempted % len(frames)]
            attempted += 1
            before = time.perf_counter()
            try:
                result = pipeline(frame)
            except PrivinferError as error:  # an explicit error: counted, never silently dropped
                failures.append(str(error))
                continue
            sent = [t for t in result.tiles if t.payload is not None]
            if sent and all(t.server in plan.addresses for t in sent):  # every chunk came back from a server
                latencies.append((time.perf_counter() - before) * 1e3)
        seconds = time.perf_counter() - started
    results.put(
        {
            "attempted": attempted,
            "completed": len(latencies),
            "errors": len(failures),
            "first_error": failures[0] if failures else None,
            "seconds": seconds,
            "latencies_ms": latencies,
            "refusals": sum(pool.refusals.values()),
        }
    )


def stream_figures(raw: dict) -> dict:
    """One stream's figures from what its process reported."""
    latencies = np.asarray(raw["latencies_ms"], dtype=np.float64)
    half = len(latencies) // 2

    def p50(values) -> float | None:
        return float(np.median(values)) if len(values) else None

    return {
        "frames": raw["completed"],
        "fps": raw["completed"] / raw["seconds"],
        "latency_ms": {
            "p50": p50(latencies),
            "p99": float(np.percentile(latencies, 99)) if len(latencies) else None,
            "p50_first_half": p50(latencies[:half]),
            "p50_second_half": p50(latencies[half:]),
        },
        "lost": raw["attempted"] - raw["completed"] - raw["errors"],
        "errors": raw["errors"],
        "first_error": raw["first_error"],
        "refusals": raw["refusals"],
    }


def run_streams(
    addresses: tuple[str, ...],
    count: int,
    seconds: float,
    frames: int,
    sample: Callable[[list[int]], None] | None = None,
    every_s: float = 5.0,
) -> list[dict]:
    """``count`` stream processes started together; their figures once all have ended. While they
    run, ``sample`` is called with their process ids every ``every_s`` seconds (for memory soaks).

    Raises ConfigError when a stream does not get ready or report in time."""
    context = get_context("spawn")
    ready, results, go = context.Queue(), context.Queue(), context.Event()
    plan = StreamPlan(addresses, seconds, frames)
    processes = [context.Process(target=run_stream, args=(plan, ready, go, results)) for _ in range(count)]
    for process in processes:
        process.start()
    try:
        for _ in processes:
            ready.get(timeout=START_TIMEOUT_S)
        go.set()
        deadline = time.monotonic() + seconds + START_TIMEOUT_S
        reports: list[dict] = []
        while len(reports) < count:
            if sample is not None:
                sample([p.pid for p in processes])
            try:
                reports.append(results.get(timeout=max(0.1, min(every_s, deadline - time.monotonic()))))
            except queue.Empty:
                if time.monotonic() >= deadline:
                    raise
    except queue.Empty:  # a stream died or hung
        raise ConfigError(f"load: {count} client streams did not all report within their time") from None
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    return [stream_figures(r) for r in reports]


class ServeProcesses:
    """``count`` `privinfer serve` processes on loopback, each on a port it picked itself (port 0,
    read back from its start-up line); ``rss_mib()`` samples them.

    Raises ConfigError when one does not announce itself within START_TIMEOUT_S."""

    def __init__(self, count: int) -> None:
        command = [sys.executable, "-m", "privinfer.cli", "serve", "--threads", "1", "--port", "0"]
        self.processes = [
            subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(count)
        ]
        try:
            self.addresses = tuple(_announced_address(p) for p in self.processes)
        except ConfigError:
            self.close()
            raise

    def rss_mib(self) -> list[float | None]:
        return [rss_mib(p.pid) for p in self.processes]

    def close(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()

    def __enter__(self) -> ServeProcesses:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _announced_address(process: subprocess.Popen) -> str:
    """The host:port in the server's "privinfer serving ... on HOST:PORT (...)" line."""
    deadline = time.monotonic() + START_TIMEOUT_S
    seen = []
    while time.monotonic() < deadline:
        readable, _, _ = select.select([process.stdout], [], [], 1.0)
        if not readable:
            continue
        line = process.stdout.readline()
        if not line:  # it exited
            break
        seen.append(line.strip())
        match = _SERVING.search(line)
        if match:
            # The rest of its output is not read: keep the pipe from filling and blocking it.
            threading.Thread(target=process.stdout.read, daemon=True).start()
            return match["address"]
    raise ConfigError(f"load: a privinfer serve process did not start: {' / '.join(seen[-3:]) or 'no output'}")


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return None


def run(ctx: BenchContext) -> dict:
    quick = ctx.options.quick
    counts, seconds = (QUICK_STREAMS, QUICK_SECONDS) if quick else (STREAMS, SECONDS)
    runs = {}
    with ServeProcesses(SERVERS) as servers:
        for count in counts:
            ctx.progress(f"load: {count} client stream(s) for {seconds:g} s against {SERVERS} servers")
            before = servers.rss_mib()
            streams = run_streams(servers.addresses, count, seconds, frames=4 if quick else 12)
            runs[str(count)] = {
                "streams": streams,
                "total_fps": sum(s["fps"] for s in streams),
                "lost": sum(s["lost"] for s in streams),
                "errors": sum(s["errors"] for s in streams),
                "refusals": sum(s["refusals"] for s in streams),
                "p99_ms_worst": max((s["latency_ms"]["p99"] or 0.0) for s in streams),
                "server_rss_mib": {"start": before, "end": servers.rss_mib()},
            }
    return {
        "setting": f"{SERVERS} `privinfer serve` processes (onnxruntime, 1 thread, default in-flight limit) on "
        f"loopback; each stream a process with 1 torch thread, faces + channel-mask, scene frames at "
        f"{FRAME_SIZE[0]}x{FRAME_SIZE[1]}, {seconds:g} s per stream count",
        "seconds_per_run": seconds,
        "runs": runs,
        "saturation": saturation(runs),
    }


def saturation(runs: dict) -> str | None:
    """The stream count past which total fps grows by less than 10%, in words (None: too few runs)."""
    counts = sorted(runs, key=int)
    if len(counts) < 2:
        return None
    for smaller, larger in zip(counts, counts[1:], strict=False):
        if runs[larger]["total_fps"] < 1.1 * runs[smaller]["total_fps"]:
            return (
                f"total throughput stops growing at {smaller} stream(s): {runs[smaller]['total_fps']:.2f} fps, "
                f"{runs[larger]['total_fps']:.2f} fps with {larger}"
            )
    return f"total throughput still grows at {counts[-1]} streams ({runs[counts[-1]]['total_fps']:.2f} fps)"


def summary(result: dict) -> dict:
    """The section's headline figures for ``summary.json``."""
    return {
        "streams": {
            count: {key: run[key] for key in ("total_fps", "p99_ms_worst", "lost", "errors", "refusals")}
            for count, run in result["runs"].items()
        },
        "server_rss_mib": {count: run["server_rss_mib"] for count, run in result["runs"].items()},
        "saturation": result["saturation"],
    }


def markdown(result: dict) -> list[str]:
    lines = [
        result["setting"] + ".",
        "",
        "| streams | total fps | fps per stream | p50 ms | p99 ms | p50 1st / 2nd half | lost | errors | refusals "
        "| server RSS MiB start -> end |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for count, run in sorted(result["runs"].items(), key=lambda item: int(item[0])):
        streams = run["streams"]

        def each(pick, streams=streams) -> str:
            return ", ".join(pick(s) for s in streams)

        rss = ", ".join(f"{_fmt(a)} -> {_fmt(b)}" for a, b in zip(*run["server_rss_mib"].values(), strict=True))
        halves = each(lambda s: f"{_fmt(s['latency_ms']['p50_first_half'])}/{_fmt(s['latency_ms']['p50_second_half'])}")
        lines.append(
            f"| {count} | {run['total_fps']:.2f} | {each(lambda s: format(s['fps'], '.2f'))} "
            f"| {each(lambda s: _fmt(s['latency_ms']['p50']))} | {each(lambda s: _fmt(s['latency_ms']['p99']))} "
            f"| {halves} | {run['lost']} | {run['errors']} | {run['refusals']} | {rss} |"
        )
    if result["saturation"]:
        lines += ["", f"Saturation: {result['saturation']}."]
    return lines


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


SECTION = register(Section("load", "Many clients at once", run, markdown))
