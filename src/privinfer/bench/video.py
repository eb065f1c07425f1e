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
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch

from privinfer.bench.context import PRIVATE_OBFUSCATOR, BenchContext, stats
from privinfer.bench.frames import video_stream
from privinfer.bench.registry import Section, register
from privinfer.pipeline import Pipeline, PipelineConfig
from privinfer.serve import create_pool

MODES = {"overlapped": True, "one frame after the other": False}  # privinfer.stream, and without it


def stream(config: PipelineConfig, backend: str, servers: int, frames: int, warmup: int, threads: int) -> dict:
    """Run ``frames`` video frames (after ``warmup`` ones) through privinfer with ``threads`` torch
    threads in the client, each frame's detection overlapping the previous frame's servers
    (``privinfer.stream``) and, on the same servers, one frame after the other; called in its own
    process. A frame's latency runs from its preparation's start to its result (waiting included)."""
    torch.set_num_threads(threads)
    out: dict = {"modes": {}}
    with create_pool(backend, servers, device=config.device) as pool:
        for mode, overlap in MODES.items():
            description, source = video_stream(frames + warmup)
            out["frames"] = description
            # Not closed: closing a pipeline closes its pool, which the next mode uses too.
            out["modes"][mode] = _measure(Pipeline(config, pool=pool), source, warmup, overlap)
    first = out["modes"]["overlapped"]
    return {
        **out,
        # The headline figures: the stream as `privinfer run` runs it.
        "measured_frames": first["measured_frames"],
        "fps": first["fps"],
        "latency_ms": first["latency_ms"],
        "fps_over_one_after_the_other": first["fps"] / out["modes"]["one frame after the other"]["fps"],
        "client_peak_rss_mib": peak_rss_mib(),
        "ru_maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "servers_in_process": backend == "threads",
    }


def _measure(pipeline: Pipeline, source: Iterator[np.ndarray], warmup: int, overlap: bool) -> dict:
    totals, waits, detections, errors = [], [], 0, 0
    pairs = enumerate(source)
    for index, rgb in zip(range(warmup), pairs, strict=False):
        pipeline(rgb[1], index)
    started = time.perf_counter()
    for outcome in pipeline.stream(pairs, overlap=overlap):
        if outcome.error is not None:
            errors += 1
            continue
        totals.append(outcome.result.timings_ms["total"])
        waits.append(outcome.result.timings_ms["wait"])
        detections += len(outcome.result.detections)
    seconds = time.perf_counter() - started
    return {
        "overlapped": overlap and not pipeline.guided,
        "measured_frames": len(totals),
        "failed_frames": errors,
        "fps": len(totals) / seconds,
        "latency_ms": stats(totals),
        "wait_ms": stats(waits),
        "detections_per_frame": detections / max(1, len(totals)),
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
    lines = [
        f"{result['pipeline']} on {result['frames']}: **{result['fps']:.2f} fps** sustained (decoding included), "
        f"per-frame latency median {latency['median']:.1f} ms, p95 {latency['p95']:.1f} ms over "
        f"{result['measured_frames']} frames; the client's memory high-water mark {memory}{servers}.",
    ]
    modes = result.get("modes")
    if not modes:
        return lines
    lines += [
        "",
        "Each frame's detection overlapping the previous frame's servers (`privinfer run` on a video), against "
        "the same frames one after the other, in the same process on the same servers. Latency: from a frame's "
        "preparation to its result, waiting for the servers included.",
        "",
        "| mode | fps | latency median / p95 ms | of which waiting, median / p95 ms | frames (failed) |",
        "|---|---|---|---|---|",
    ]
    for mode, row in modes.items():
        lat, wait = row["latency_ms"], row["wait_ms"]
        note = "" if row["overlapped"] or mode != "overlapped" else " (not possible: guided detector)"
        lines.append(
            f"| {mode}{note} | **{row['fps']:.2f}** | {lat['median']:.1f} / {lat['p95']:.1f} | "
            f"{wait['median']:.1f} / {wait['p95']:.1f} | {row['measured_frames']} ({row['failed_frames']}) |"
        )
    lines += ["", f"Throughput overlapped / one after the other: **{result['fps_over_one_after_the_other']:.2f}x**."]
    return lines


SECTION = register(Section("video", "Video stream", run, markdown))
