"""Frame latency over 1..4 real servers on the namespace testbed, against the ideal (needs root).

The default pipeline (content-aware partition, no privacy) runs on two kinds of frames: a street
video (vtest.avi's pedestrians, consecutive frames: each partitioned by the previous frame's
detections) and photos of people (stills: discovery frames). For each setting (unshaped links:
compute-bound; equal shaped links: bandwidth-bound; links of unequal rates) a testbed of 4 servers
is brought up; pipelines over the first 1, 2, ... 4 servers run warm-up frames (their capacity
models learn the servers), then take the measured frames in turn.

Ideal = what a perfect split of the one-server frame would take: its compute (the servers stage
with one server, less its transfer) over N, plus its bytes both ways (the pixels sent and the raw
outputs returned) over the N links' summed rate. "Ideal here" caps the compute term's N at this
machine's cores: N servers on C < N cores cannot compute faster than C of them. Chunks overlap (the
context each carries) and one chunk goes to each server, so the partition cannot reach the ideal.
"""

from __future__ import annotations

import os
import statistics
from collections import Counter
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

import numpy as np

from privinfer import assets, testbed
from privinfer.bench.context import BenchContext
from privinfer.bench.partition_quality import people_photos
from privinfer.bench.registry import Section, register
from privinfer.data import media, sources
from privinfer.errors import TestbedError
from privinfer.images import read_image
from privinfer.pipeline import Pipeline, PipelineConfig
from privinfer.plotting import save_figure
from privinfer.serve import RemoteOptions, create_pool
from privinfer.serve.recording import RecordingPool
from privinfer.testbed import network
from privinfer.types import Treatment

MAX_SERVERS = 4
BANDWIDTH = "10mbit"  # each link in the bandwidth-bound setting
UNEQUAL = ("40mbit", "20mbit", "10mbit", "5mbit")  # the heterogeneous setting, fastest link first
RAW_ONLY = {"obfuscator": "unaltered", "sensitive": ()}  # no client-side detectors: the servers dominate
STREET = "opencv-vtest.avi"


def street_frames(count: int) -> list[np.ndarray]:
    """The first ``count`` consecutive frames of vtest.avi (the dog photo when it is not cached)."""
    sources.register()
    if not assets.verify(STREET):
        return [read_image(assets.require("dog.jpg")).pixels] * count
    path = assets.require(STREET)
    return [rgb for _, rgb in media.video_frames(path, range(min(count, media.video_frame_count(path))))]


def run_frames(
    addresses: tuple[str, ...], frames: list[np.ndarray], warmup: int, stream: bool, device: str
) -> list[dict]:
    """The frames over the first 1, 2, ... len(addresses) servers: one pipeline each, taking each
    frame in turn (so that a change of the machine's load hits every N alike). ``stream``: the frames
    are a video (each partitioned by the previous one's detections); otherwise each is a still."""
    config = PipelineConfig(servers=addresses, device=device, **RAW_ONLY)
    counts = range(1, len(addresses) + 1)
    with ExitStack() as stack:
        pipelines, pools = [], []
        for count in counts:
            pools.append(RecordingPool(create_pool("threads", addresses[:count], remote=RemoteOptions(deadline_s=120))))
            pipeline = Pipeline(replace(config, servers=addresses[:count]), pool=pools[-1])
            pipelines.append(stack.enter_context(pipeline))
        for frame in frames[:warmup]:  # the capacity models learn the servers
            for pipeline in pipelines:
                pipeline(frame)
        results: list[list] = [[] for _ in pipelines]
        for index, frame in enumerate(frames[warmup:]):
            shift = index % len(pipelines)
            for n in [*range(shift, len(pipelines)), *range(shift)]:
                if not stream:
                    pipelines[n].reset()
                results[n].append(pipelines[n](frame))
    rows = []
    for count, measured in zip(counts, results, strict=True):
        sent = [[t for t in r.tiles if t.treatment != Treatment.DISCARDED] for r in measured]
        rows.append({
            "servers_ms": statistics.median(r.timings_ms["servers"] for r in measured),
            "total_ms": statistics.median(r.timings_ms["total"] for r in measured),
            "chunks": dict(sorted(Counter(str(len(s)) for s in sent).items())),
            "request_bytes": statistics.median(sum(t.bytes for t in s) for s in sent),
            "output_bytes": statistics.median(sum(t.answer_bytes for t in s) for s in sent),
            "chunks_per_server": [sum(t.server == a for s in sent for t in s) for a in addresses[:count]],
        })  # fmt: skip
    return rows


def ideal_ms(one: dict, servers: int, rate_bits: float | None, cores: int, one_rate_bits: float | None):
    """(ideal, ideal on this machine's cores) ms of a perfect split of the one-server frame ``one``
    over ``servers`` servers whose links add up to ``rate_bits`` (None: unshaped)."""
    wire = one["request_bytes"] + one["output_bytes"]
    transfer_one = 0.0 if one_rate_bits is None else wire * 8 / one_rate_bits * 1e3
    compute = max(one["servers_ms"] - transfer_one, 0.0)
    transfer = 0.0 if rate_bits is None else wire * 8 / rate_bits * 1e3
    return compute / servers + transfer, compute / min(servers, cores) + transfer


def _setting(ctx: BenchContext, bandwidths: tuple[str | None, ...], frame_sets: dict) -> dict:
    """Bring a testbed of MAX_SERVERS up (link i shaped to ``bandwidths[i]``, None: unshaped), measure
    1..MAX_SERVERS on each frame set, take it down. Returns frame set -> rows."""
    cores = os.cpu_count() or 1
    specs = tuple(testbed.ServerSpec(bandwidth, threads=1) for bandwidth in bandwidths)
    bed = testbed.up(testbed.TestbedConfig(servers=specs, ready_timeout_s=300).validate())
    try:
        runs = {name: run_frames(bed.addresses, frames, warmup, stream, ctx.options.device)
                for name, (frames, warmup, stream) in frame_sets.items()}  # fmt: skip
    finally:
        testbed.down()
    out = {}
    for name, rows in runs.items():
        one_rate = None if bandwidths[0] is None else testbed.rate_bits(bandwidths[0])
        for count, row in enumerate(rows, start=1):
            shaped = bandwidths[:count]
            rate = None if None in shaped else sum(testbed.rate_bits(b) for b in shaped)
            row["servers"] = count
            row["ideal_ms"], row["ideal_here_ms"] = ideal_ms(rows[0], count, rate, cores, one_rate)
            row["speedup"] = rows[0]["servers_ms"] / row["servers_ms"]
            row["frame_speedup"] = rows[0]["total_ms"] / row["total_ms"]
            row["latency_over_ideal"] = row["servers_ms"] / row["ideal_here_ms"]
        out[name] = rows
    return out


def run(ctx: BenchContext) -> dict:
    reason = testbed.unavailable()
    if reason is None and (network.our_namespaces() or network.our_devices()):
        reason = "a testbed is already up (another run or test uses it); `privinfer testbed down` frees it"
    if reason:
        ctx.progress(f"scaling: skipped, {reason}")
        return {"skipped": reason}
    cores = os.cpu_count() or 1
    quick = ctx.options.quick
    count, warmup = (3, 1) if quick else (max(8, ctx.frame_count // 4), 3)
    street = street_frames(count + warmup)
    photos = people_photos(3 if quick else None)
    settings: dict[str, tuple[str | None, ...]] = {"unshaped (compute-bound)": (None,) * MAX_SERVERS}
    if not quick:
        settings[f"{BANDWIDTH} links (bandwidth-bound)"] = (BANDWIDTH,) * MAX_SERVERS
        settings[f"unequal links {'/'.join(b.removesuffix('mbit') for b in UNEQUAL)} mbit"] = UNEQUAL
    out: dict = {
        "cores": cores,
        "note": f"This machine has {cores} CPU cores: with unshaped links the servers and the client compete for "
        f"them, so compute-bound scaling beyond {cores} servers cannot show here ('ideal here' caps N at {cores})"
        + (
            "; the bandwidth-bound settings show what parallel links give, equal or not (servers are added "
            "fastest link first)"
            if len(settings) > 1
            else ""
        )
        + ". Other load on the machine slows every figure.",
        "settings": {},
    }
    for name, bandwidths in settings.items():
        ctx.progress(f"scaling: {name}, testbed of {MAX_SERVERS} servers")
        frame_sets = {"street video": (street, warmup, True)}
        if bandwidths[0] is None:  # stills only compute-bound: a shaped link takes seconds per photo
            frame_sets["photos of people"] = (photos[:1] * warmup + photos, warmup, False)
        try:
            out["settings"][name] = _setting(ctx, bandwidths, frame_sets)
        except TestbedError as error:  # e.g. a testbed came up meanwhile: it is not ours to take down
            out["settings"][name] = {"skipped": str(error)}
    return out


def compute_bound(result: dict) -> list[dict] | None:
    """The unshaped setting's street-video rows (None when skipped)."""
    sets = result.get("settings", {}).get("unshaped (compute-bound)", {})
    rows = sets.get("street video") if isinstance(sets, dict) else None
    return rows if isinstance(rows, list) else None


def markdown(result: dict) -> list[str]:
    if "skipped" in result:
        return [f"Skipped: {result['skipped']}."]
    lines = [result["note"], ""]
    header = (
        "| N | servers ms | frame ms | ideal ms | ideal here ms | over ideal here | speed-up (servers / frame) "
        "| chunks | per server |"
    )
    for name, sets in result["settings"].items():
        if not isinstance(sets, dict):  # written by an earlier version of this section (fixed tiles)
            lines += [f"{name}: measured by an earlier version of this benchmark; run `--only scaling` again", ""]
            continue
        if "skipped" in sets:
            lines += [f"{name}: skipped, {sets['skipped']}", ""]
            continue
        for frames, rows in sets.items():
            wire_mb = (rows[0]["request_bytes"] + rows[0]["output_bytes"]) / 1e6
            lines += [f"**{name}, {frames}**: {wire_mb:.2f} MB on the wire per frame with one server", "", header]
            lines.append("|---" * 9 + "|")
            lines += [
                f"| {r['servers']} | {r['servers_ms']:.1f} | {r['total_ms']:.1f} | {r['ideal_ms']:.1f} | "
                f"{r['ideal_here_ms']:.1f} | {r['latency_over_ideal']:.2f} | {r['speedup']:.2f}x / "
                f"{r['frame_speedup']:.2f}x | {r['chunks']} | {r['chunks_per_server']} |"
                for r in rows
            ]
            lines.append("")
    return lines


def plot(result: dict, out: Path) -> str | None:
    import matplotlib.pyplot as plt

    panels = [
        (f"{name}, {frames}", rows)
        for name, sets in result.get("settings", {}).items()
        if isinstance(sets, dict) and "skipped" not in sets
        for frames, rows in sets.items()
    ]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for axis, (title, rows) in zip(axes[0], panels, strict=True):
        counts = [r["servers"] for r in rows]
        axis.plot(counts, [r["servers_ms"] for r in rows], "o-", label="measured (servers stage)")
        axis.plot(counts, [r["ideal_ms"] for r in rows], "k--", label="ideal")
        axis.plot(counts, [r["ideal_here_ms"] for r in rows], "k:", label=f"ideal on {result['cores']} cores")
        axis.set_xticks(counts)
        axis.set_xlabel("servers")
        axis.set_ylabel("ms per frame")
        axis.set_title(title, fontsize=9)
        axis.legend(fontsize=8)
    return save_figure(fig, out / "scaling.png")


SECTION = register(Section("scaling", "Scaling over testbed servers", run, markdown, plot))
