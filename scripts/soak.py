"""Memory soak: stream frames through the private pipeline for minutes and watch this process's RSS.

Frames are the corpus's scene frames (`privinfer data fetch`) or the frames of OpenCV's vtest.avi
(`--source vtest`), looped, as one video (the sensitive-box memory and the capacity model run the
whole time). The servers are local threads, so the RSS covers client and servers together.
RSS is sampled between frames every --sample-s seconds. After the warm-up (--warmup-min, default a
fifth of the run, at least a minute: RSS was seen to rise in steps over the first three passes over
the 84 scene frames, about a minute on 2 busy cores, then stay flat) a least-squares line through
the samples gives the growth in MB per minute.

Prints first / last / peak RSS and the slope; exits 1 when the slope is above --max-slope (default
1 MB/min), 2 when it cannot run (no frames, too few samples after the warm-up).

Run: `.venv/bin/python scripts/soak.py --minutes 10` (add `--csv soak.csv` to keep the samples).

Many clients: `--clients 8` starts 2 `privinfer serve` processes on loopback and 8 client stream
processes (each the private pipeline over gRPC to both servers, as `privinfer bench`'s load
section runs them) for the same time, samples every process's RSS, and gives the slope of the
servers' and of the clients' RSS (the largest of each); it also fails on any lost or failed frame.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import resource
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from privinfer import assets
from privinfer.bench import load
from privinfer.errors import PrivinferError
from privinfer.pipeline import Pipeline, PipelineConfig


@dataclass(frozen=True)
class Sample:
    seconds: float
    frames: int
    rss_mb: float


def rss_mb() -> float:
    """This process's resident set size now (Linux: VmRSS of /proc/self/status)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise PrivinferError("no VmRSS in /proc/self/status: the soak needs Linux")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def frames(source: str) -> list[np.ndarray]:
    """The source's frames as RGB arrays. Raises PrivinferError (e.g. the corpus is not built)."""
    if source == "scenes":
        from privinfer.data.corpus import load_split

        return [np.ascontiguousarray(image) for image in load_split("scenes").images]
    video = cv2.VideoCapture(str(assets.require("opencv-vtest.avi")))
    decoded = []
    while True:
        ok, bgr = video.read()
        if not ok:
            break
        decoded.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    video.release()
    if not decoded:
        raise PrivinferError("opencv-vtest.avi gave no frames")
    return decoded


def slope_mb_per_min(samples: list[Sample]) -> float:
    """Least-squares growth of RSS through ``samples``, in MB per minute."""
    minutes = np.array([s.seconds / 60 for s in samples])
    rss = np.array([s.rss_mb for s in samples])
    return float(np.polyfit(minutes, rss, 1)[0])


def soak(pipeline: Pipeline, stream: Iterator[np.ndarray], seconds: float, every_s: float) -> list[Sample]:
    started = time.monotonic()
    samples = [Sample(0.0, 0, rss_mb())]
    count, last_report = 0, started
    while time.monotonic() - started < seconds:
        pipeline(next(stream))
        count += 1
        now = time.monotonic()
        if now - started >= samples[-1].seconds + every_s:
            samples.append(Sample(now - started, count, rss_mb()))
            if now - last_report >= 30:
                last_report = now
                print(f"  {(now - started) / 60:5.1f} min  {count} frames  RSS {samples[-1].rss_mb:.1f} MB", flush=True)
    samples.append(Sample(time.monotonic() - started, count, rss_mb()))
    return samples


def rss_of(pid: int) -> float:
    """A process's RSS in MB now (0 once it has ended)."""
    return load.rss_mib(pid) or 0.0


def soak_clients(clients: int, seconds: float, every_s: float) -> tuple[dict[str, list[Sample]], list[dict]]:
    """``clients`` stream processes against 2 `privinfer serve` processes for ``seconds``: RSS
    samples per process (named server-i / client-i) and each stream's figures."""
    samples: dict[str, list[Sample]] = {}
    started: list[float] = []  # when the streams began (the first sample: they are all loaded then)
    with load.ServeProcesses(2) as servers:
        print(f"soak: servers {', '.join(servers.addresses)}", flush=True)

        def sample(client_pids: list[int]) -> None:
            started[:] = started or [time.monotonic()]
            now = time.monotonic() - started[0]
            named = {f"server-{i}": p.pid for i, p in enumerate(servers.processes)}
            named |= {f"client-{i}": pid for i, pid in enumerate(client_pids)}
            for name, pid in named.items():
                samples.setdefault(name, []).append(Sample(now, 0, rss_of(pid)))

        streams = load.run_streams(servers.addresses, clients, seconds, frames=12, sample=sample, every_s=every_s)
    return samples, streams


def report_clients(args, warmup_min: float) -> int:
    samples, streams = soak_clients(args.clients, args.minutes * 60, args.sample_s)
    lost, failed = sum(s["lost"] for s in streams), sum(s["errors"] for s in streams)
    refusals = sum(s["refusals"] for s in streams)
    print(
        f"frames: {sum(s['frames'] for s in streams)} in {args.minutes:g} min over {args.clients} streams, "
        f"{lost} lost, {failed} failed, {refusals} busy refusals re-sent; p99 per stream "
        + ", ".join(f"{s['latency_ms']['p99']:.0f}" for s in streams if s["latency_ms"]["p99"] is not None)
        + " ms"
    )
    worst: dict[str, float] = {}
    for name, found in samples.items():
        settled = [s for s in found if s.seconds >= warmup_min * 60 and s.rss_mb > 0]
        if len(settled) < 3:
            print(f"soak: error: {len(settled)} samples of {name} after the warm-up: run longer", file=sys.stderr)
            return 2
        slope = slope_mb_per_min(settled)
        kind = name.split("-")[0]
        worst[kind] = max(worst.get(kind, -float("inf")), slope)
        print(
            f"  {name}: RSS first {found[0].rss_mb:.1f} MB, last {settled[-1].rss_mb:.1f} MB, slope {slope:+.3f} MB/min"
        )
    verdicts = {kind: "ok" if slope <= args.max_slope else "FAIL" for kind, slope in worst.items()}
    for kind, slope in worst.items():
        print(f"largest {kind} slope after warm-up: {slope:+.3f} MB/min (limit {args.max_slope:g}): {verdicts[kind]}")
    return 0 if lost == 0 and failed == 0 and "FAIL" not in verdicts.values() else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to stream (default 10)")
    parser.add_argument(
        "--warmup-min", type=float, default=None, help="minutes left out of the slope (a fifth of the run, at least 1)"
    )
    parser.add_argument("--sample-s", type=float, default=5.0, help="seconds between RSS samples (default 5)")
    parser.add_argument("--max-slope", type=float, default=1.0, help="MB/min of growth that fails (default 1)")
    parser.add_argument("--servers", type=int, default=3, help="local thread servers (default 3)")
    parser.add_argument("--source", choices=("scenes", "vtest"), default="scenes", help="frames to loop")
    parser.add_argument("--csv", type=Path, default=None, help="also write the samples here")
    parser.add_argument(
        "--clients", type=int, default=0, help="client stream processes against 2 privinfer serve processes (0: off)"
    )
    args = parser.parse_args(argv)
    warmup_min = max(1.0, args.minutes / 5) if args.warmup_min is None else args.warmup_min
    if args.clients > 0:
        try:
            return report_clients(args, warmup_min)
        except PrivinferError as error:
            print(f"soak: error: {error}", file=sys.stderr)
            return 2

    try:
        inputs = frames(args.source)
        config = PipelineConfig(
            servers=args.servers, backend="threads", obfuscator="channel-mask", sensitive=("faces",)
        )
        with Pipeline(config) as pipeline:
            print(
                f"soak: {len(inputs)} {args.source} frames looped for {args.minutes:g} min, {args.servers} thread "
                f"servers, RSS every {args.sample_s:g} s, slope after {warmup_min:g} min",
                flush=True,
            )
            samples = soak(pipeline, itertools.cycle(inputs), args.minutes * 60, args.sample_s)
    except PrivinferError as error:
        print(f"soak: error: {error}", file=sys.stderr)
        return 2

    if args.csv is not None:
        with args.csv.open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["seconds", "frames", "rss_mb"])
            writer.writerows((f"{s.seconds:.2f}", s.frames, f"{s.rss_mb:.2f}") for s in samples)
    settled = [s for s in samples if s.seconds >= warmup_min * 60]
    frames_done = samples[-1].frames
    print(f"frames: {frames_done} in {samples[-1].seconds / 60:.2f} min ({frames_done / samples[-1].seconds:.2f} fps)")
    after_warmup = settled[0].rss_mb if settled else float("nan")
    peak = max(s.rss_mb for s in samples)
    print(
        f"RSS: first {samples[0].rss_mb:.1f} MB, after warm-up {after_warmup:.1f} MB, "
        f"last {samples[-1].rss_mb:.1f} MB, peak sampled {peak:.1f} MB (peak ever {peak_rss_mb():.1f} MB)"
    )
    if len(settled) < 3:
        print(
            f"soak: error: {len(settled)} samples after the warm-up: run longer or sample more often", file=sys.stderr
        )
        return 2
    slope = slope_mb_per_min(settled)
    verdict = "ok" if slope <= args.max_slope else "FAIL"
    print(f"slope after warm-up: {slope:+.3f} MB/min over {len(settled)} samples (limit {args.max_slope:g}): {verdict}")
    return 0 if slope <= args.max_slope else 1


if __name__ == "__main__":
    sys.exit(main())
