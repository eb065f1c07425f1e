"""A video stream: sustained frames per second, per-frame latency and memory on vtest.avi.

The stream runs in a fresh process so that its memory high-water mark is the client's own, not
that of everything the benchmark loaded before. Linux carries ``ru_maxrss`` across fork and exec
(a child starts at its parent's peak), so the figure is the process's ``VmHWM`` (the peak of its
own address space); ``ru_maxrss`` is recorded beside it. With local server processes the servers'
memory is theirs, not counted. Frames are decoded as the stream goes (decoding is in the fps) and
keep their video state (sensitive boxes held across frames).
"""

from __future__ import annotations

import resource
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import torch

from privinfer.bench.context import PRIVATE_OBFUSCATOR, BenchContext, stats
from privinfer.bench.frames import video_stream
from privinfer.bench.registry import Section, register
from privinfer.pipeline import Pipeline, PipelineConfig
from privinfer.serve import create_pool


def stream(config: PipelineConfig, backend: str, servers: int, frames: int, warmup: int, threads: int) -> dict:
    """Run ``frames`` video frames (after ``warmup`` ones) through privinfer with ``threads`` torch
    threads in the client; called in its own process."""
    torch.set_num_threads(threads)
    description, source = video_stream(frames + warmup)
    totals, detections = [], 0
    with Pipeline(config, pool=create_pool(backend, servers, device=config.device)) as pipeline:
        for index in range(warmup):
            pipeline(next(source), index)
        started = time.perf_counter()
        for index, rgb in enumerate(source, start=warmup):
            result = pipeline(rgb, index)
            totals.append(result.timings_ms["total"])
            detections += len(result.detections)
        seconds = time.perf_counter() - started
    return {
        "frames": description,
        "measured_frames": len(totals),
        "fps": len(totals) / seconds,
        "latency_ms": stats(totals),
        "detections_per_frame": detections / max(1, len(totals)),
        "client_peak_rss_mib": peak_rss_mib(),
        "ru_maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "servers_in_process": backend == "threads",
    }


def peak_rss_mib() -> float | None:
    """This process's peak resident memory since it exec'd (Linux ``VmHWM``); None elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return None


def run(ctx: BenchContext) -> dict:
    config = ctx.config()
    ctx.progress(f"video: {ctx.frame_count} frames in a fresh process")
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as fresh:
        options = ctx.options
        threads = torch.get_num_threads()  # the benchmark's client setting
        out = fresh.submit(stream, config, options.backend, ctx.servers, ctx.frame_count, options.warmup, threads)
        out = out.result()
    pipeline = f"privinfer (faces, {PRIVATE_OBFUSCATOR}), {ctx.servers} local servers ({options.backend})"
    return {"pipeline": pipeline, "client_torch_threads": threads, **out}


def markdown(result: dict) -> list[str]:
    latency = result["latency_ms"]
    peak = result["client_peak_rss_mib"]
    memory = f"{peak:.0f} MiB" if peak is not None else f"{result['ru_maxrss_mib']:.0f} MiB (ru_maxrss)"
    servers = " (servers included: they are its threads)" if result["servers_in_process"] else " (servers not included)"
    return [
        f"{result['pipeline']} on {result['frames']}: **{result['fps']:.2f} fps** sustained (decoding included), "
        f"per-frame latency median {latency['median']:.1f} ms, p95 {latency['p95']:.1f} ms over "
        f"{result['measured_frames']} frames; the client's memory high-water mark {memory}{servers}.",
    ]


SECTION = register(Section("video", "Video stream", run, markdown))
