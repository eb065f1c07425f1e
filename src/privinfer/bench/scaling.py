"""Frame latency over 1, 2 and 4 edge servers with a CPU budget each, on the namespace testbed (root).

Each server gets a budget enforced by the kernel (a cgroup CPU quota: 0.25 core each, or unequal
0.5 / 0.25 / 0.125 / 0.125), all pinned to the cores the client does not use; the client is pinned
to core 0. That emulates what an edge server gives one user, on a machine whose two cores cannot
hold four real servers. Links are unshaped (compute-bound) or shaped to 10 mbit each
(bandwidth-bound); one setting keeps the earlier unbudgeted servers on shared cores.

Two frame sets: a street video (vtest.avi's pedestrians, consecutive frames: each partitioned by
the previous frame's detections) and photos of people (stills: discovery frames). Two pipelines:
the private default (faces, token) and the one without privacy; the latter over one server is the
unprotected whole frame on one such server, the reference of the end-to-end ratio. Pipelines over
the first 1, 2 and 4 servers run warm-up frames (their cost models learn the servers), then take the
measured frames in turn. The partition chooses the chunks itself from what it measured.

Ideal = a perfect split of the one-server frame: its compute (the servers stage with one server,
less its transfer) over the N servers' summed budget relative to the first's, plus its bytes both
ways over the N links' summed rate. The servers' fitted cost models are kept in the results: the
simulator (``simulate.py``) is fed by them.
"""

from __future__ import annotations

import os
import statistics
from collections import Counter
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
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
from privinfer.testbed import cpu_budget, network
from privinfer.types import Treatment

MAX_SERVERS = 4
COUNTS = (1, 2, 4)
BUDGET = 0.25
UNEQUAL_BUDGETS = (0.5, 0.25, 0.125, 0.125)
BANDWIDTH = "10mbit"  # each link in the bandwidth-bound setting
RAW_ONLY = {"obfuscator": "unaltered", "sensitive": ()}  # no client-side detectors: the servers dominate
PIPELINES: dict[str, dict] = {"no privacy": RAW_ONLY, "private default": {}}
REFERENCE = "no privacy"  # over one server: the unprotected whole frame on one such server
STREET = "opencv-vtest.avi"
CLIENT_CORE = 0


@dataclass(frozen=True)
class Setting:
    """One testbed: each server's link (None: unshaped) and CPU budget (None: none, shared cores)."""

    name: str
    bandwidths: tuple[str | None, ...]
    budgets: tuple[float | None, ...]

    @property
    def budgeted(self) -> bool:
        return all(b is not None for b in self.budgets)


SETTINGS = (
    Setting("0.25 core each, unshaped links (compute-bound)", (None,) * MAX_SERVERS, (BUDGET,) * MAX_SERVERS),
    Setting("0.5/0.25/0.125/0.125 core, unshaped links", (None,) * MAX_SERVERS, UNEQUAL_BUDGETS),
    Setting(
        f"0.25 core each, {BANDWIDTH} links (bandwidth-bound)", (BANDWIDTH,) * MAX_SERVERS, (BUDGET,) * MAX_SERVERS
    ),
    Setting("unbudgeted, shared cores, unshaped links", (None,) * MAX_SERVERS, (None,) * MAX_SERVERS),
)


def street_frames(count: int) -> list[np.ndarray]:
    """The first ``count`` consecutive frames of vtest.avi (the dog photo when it is not cached)."""
    sources.register()
    if not assets.verify(STREET):
        return [read_image(assets.require("dog.jpg")).pixels] * count
    path = assets.require(STREET)
    return [rgb for _, rgb in media.video_frames(path, range(min(count, media.video_frame_count(path))))]


def run_frames(
    addresses: tuple[str, ...], frames: list[np.ndarray], warmup: int, stream: bool, device: str, overrides: dict
) -> tuple[list[dict], dict]:
    """The frames over the first 1, 2 and 4 servers: one pipeline each, taking each frame in turn (so
    that a change of the machine's load hits every N alike). ``stream``: the frames are a video (each
    partitioned by the previous one's detections); otherwise each is a still. Returns the rows and
    the cost model the largest pipeline learned (per server: seconds per call and per megapixel)."""
    config = PipelineConfig(servers=addresses, device=device, **overrides)
    counts = [n for n in COUNTS if n <= len(addresses)]
    with ExitStack() as stack:
        pipelines = []
        for count in counts:
            pool = create_pool("threads", addresses[:count], remote=RemoteOptions(deadline_s=120))
            pipelines.append(stack.enter_context(Pipeline(replace(config, servers=addresses[:count]), pool=pool)))
        for frame in frames[:warmup]:  # the cost models learn the servers
            for pipeline in pipelines:
                if not stream:
                    pipeline.reset()
                pipeline(frame)
        results: list[list] = [[] for _ in pipelines]
        for index, frame in enumerate(frames[warmup:]):
            shift = index % len(pipelines)
            for n in [*range(shift, len(pipelines)), *range(shift)]:
                if not stream:
                    pipelines[n].reset()
                results[n].append(pipelines[n](frame))
        learned = pipelines[-1].capacity
        model = {
            server: {
                "call_s": learned.call_cost(server),
                "s_per_mpx": learned.seconds_per_unit[server] * 10,  # a work unit is 0.1 megapixel
                "noise_s": learned.noise_seconds.get(server, 0.0),
                "fitted": server in learned.call_seconds,
            }
            for server in learned.servers
        }
    rows = []
    for count, measured in zip(counts, results, strict=True):
        sent = [[t for t in r.tiles if t.treatment != Treatment.DISCARDED] for r in measured]
        rows.append({
            "servers": count,
            "servers_ms": statistics.median(r.timings_ms["servers"] for r in measured),
            "total_ms": statistics.median(r.timings_ms["total"] for r in measured),
            "client_ms": statistics.median(r.timings_ms["total"] - r.timings_ms["servers"] for r in measured),
            "chunks": dict(sorted(Counter(str(len(s)) for s in sent).items())),
            "request_bytes": statistics.median(sum(t.bytes for t in s) for s in sent),
            "output_bytes": statistics.median(sum(t.answer_bytes for t in s) for s in sent),
            "chunks_per_server": [sum(t.server == a for s in sent for t in s) for a in addresses[:count]],
            "frame_size": [int(frames[0].shape[1]), int(frames[0].shape[0])],
        })  # fmt: skip
    return rows, model


def ideal_ms(one: dict, capacity: float, rate_bits: float | None, one_rate_bits: float | None) -> float:
    """Ideal ms of a perfect split of the one-server frame ``one`` over servers whose summed budget is
    ``capacity`` times the first server's and whose links add up to ``rate_bits`` (None: unshaped)."""
    wire = one["request_bytes"] + one["output_bytes"]
    transfer_one = 0.0 if one_rate_bits is None else wire * 8 / one_rate_bits * 1e3
    compute = max(one["servers_ms"] - transfer_one, 0.0)
    transfer = 0.0 if rate_bits is None else wire * 8 / rate_bits * 1e3
    return compute / capacity + transfer


@contextmanager
def pinned_client(core: int):
    """This process on ``core`` alone while the block runs (the servers get the other cores)."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {core})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _setting(ctx: BenchContext, setting: Setting, frame_sets: dict) -> dict:
    """Bring a testbed of MAX_SERVERS up as ``setting`` says, measure every pipeline on each frame
    set, take it down. Returns frame set -> pipeline -> rows, and the servers' learned cost models."""
    cores = os.cpu_count() or 1
    server_cores = f"{CLIENT_CORE + 1}-{cores - 1}" if cores > 2 else str(CLIENT_CORE + 1)
    specs = tuple(
        testbed.ServerSpec(bandwidth, threads=1, cpu=budget, cpus=server_cores if budget is not None else None)
        for bandwidth, budget in zip(setting.bandwidths, setting.budgets, strict=True)
    )
    bed = testbed.up(testbed.TestbedConfig(servers=specs, ready_timeout_s=600).validate())
    runs: dict = {}
    models: dict = {}
    try:
        with pinned_client(CLIENT_CORE) if setting.budgeted and cores > 1 else ExitStack():
            for name, (frames, warmup, stream) in frame_sets.items():
                for pipeline, overrides in PIPELINES.items():
                    ctx.progress(f"scaling: {setting.name}, {name}, {pipeline}")
                    rows, model = run_frames(bed.addresses, frames, warmup, stream, ctx.options.device, overrides)
                    runs.setdefault(name, {})[pipeline] = rows
                    models[f"{name}, {pipeline}"] = model
    finally:
        testbed.down()
    budgets = [b if b is not None else 1.0 for b in setting.budgets]
    one_rate = None if setting.bandwidths[0] is None else testbed.rate_bits(setting.bandwidths[0])
    for sets in runs.values():
        reference = sets[REFERENCE][0]
        for rows in sets.values():
            for row in rows:
                count = row["servers"]
                shaped = setting.bandwidths[:count]
                rate = None if None in shaped else sum(testbed.rate_bits(b) for b in shaped)
                capacity = sum(budgets[:count]) / budgets[0] if setting.budgeted else min(count, cores)
                row["ideal_ms"] = ideal_ms(rows[0], capacity, rate, one_rate)
                row["speedup"] = rows[0]["servers_ms"] / row["servers_ms"]
                row["ideal_speedup"] = rows[0]["servers_ms"] / row["ideal_ms"]
                row["frame_speedup"] = rows[0]["total_ms"] / row["total_ms"]
                row["latency_over_ideal"] = row["servers_ms"] / row["ideal_ms"]
                row["vs_unprotected_one_server"] = row["total_ms"] / reference["total_ms"]
    server_budgets = dict(zip(bed.addresses, setting.budgets, strict=True))
    server_links = dict(zip(bed.addresses, setting.bandwidths, strict=True))
    return {
        "addresses": list(bed.addresses),
        "budgets": list(setting.budgets),
        "bandwidths": list(setting.bandwidths),
        "frames": runs,
        "cost_models": {
            name: {s: {**m, "cpu": server_budgets[s], "link": server_links[s]} for s, m in model.items()}
            for name, model in models.items()
        },
    }


def run(ctx: BenchContext) -> dict:
    reason = testbed.unavailable() or cpu_budget.unavailable()
    if reason is None and (network.our_namespaces() or network.our_devices()):
        reason = "a testbed is already up (another run or test uses it); `privinfer testbed down` frees it"
    if reason:
        ctx.progress(f"scaling: skipped, {reason}")
        return {"skipped": reason}
    cores = os.cpu_count() or 1
    quick = ctx.options.quick
    count, warmup = (3, 1) if quick else (max(8, ctx.frame_count // 8), 4)
    street = street_frames(count + warmup)
    photos = people_photos(3 if quick else 8)
    settings = SETTINGS[:1] if quick else SETTINGS
    out: dict = {
        "cores": cores,
        "note": f"This machine has {cores} CPU cores. The client is pinned to core {CLIENT_CORE}; budgeted servers "
        "share the other core(s), each held to its budget by a cgroup CPU quota (an emulation of edge servers "
        "that each give this user that share of a core). Unbudgeted servers compete with the client for every "
        "core. Other load on the machine slows every figure; ratios come from one run.",
        "settings": {},
    }
    for setting in settings:
        ctx.progress(f"scaling: {setting.name}, testbed of {MAX_SERVERS} servers")
        frame_sets = {"street video": (street, warmup, True)}
        shaped = setting.bandwidths[0] is not None
        if not shaped or not quick:
            frame_sets["photos of people"] = (photos[:1] * warmup + photos, warmup, False)
        try:
            out["settings"][setting.name] = _setting(ctx, setting, frame_sets)
        except TestbedError as error:  # e.g. a testbed came up meanwhile: it is not ours to take down
            out["settings"][setting.name] = {"skipped": str(error)}
    return out


def compute_bound(result: dict) -> list[dict] | None:
    """The budgeted compute-bound setting's street-video rows without privacy (None when skipped)."""
    sets = result.get("settings", {}).get(SETTINGS[0].name, {})
    rows = sets.get("frames", {}).get("street video", {}).get(REFERENCE) if isinstance(sets, dict) else None
    return rows if isinstance(rows, list) else None


def markdown(result: dict) -> list[str]:
    if "skipped" in result:
        return [f"Skipped: {result['skipped']}."]
    lines = [result["note"], ""]
    header = (
        "| pipeline | N | servers ms | frame ms | ideal ms | speed-up (servers) | ideal speed-up | over ideal "
        "| frame / unprotected 1 server | chunks | bytes up / down |"
    )
    for name, setting in result["settings"].items():
        if "skipped" in setting:
            lines += [f"{name}: skipped, {setting['skipped']}", ""]
            continue
        if "frames" not in setting:  # written by an earlier version of this section
            lines += [f"{name}: measured by an earlier version of this benchmark; run `--only scaling` again", ""]
            continue
        for frames, pipelines in setting["frames"].items():
            lines += [f"**{name}, {frames}**", "", header, "|---" * 11 + "|"]
            for pipeline, rows in pipelines.items():
                lines += [
                    f"| {pipeline} | {r['servers']} | {r['servers_ms']:.1f} | {r['total_ms']:.1f} | "
                    f"{r['ideal_ms']:.1f} | {r['speedup']:.2f}x | {r['ideal_speedup']:.2f}x | "
                    f"{r['latency_over_ideal']:.2f} | {r['vs_unprotected_one_server']:.2f} | {r['chunks']} | "
                    f"{r['request_bytes'] / 1e3:.0f} kB / {r['output_bytes'] / 1e3:.1f} kB |"
                    for r in rows
                ]
            lines.append("")
    return lines


def plot(result: dict, out: Path) -> str | None:
    import matplotlib.pyplot as plt

    panels = [
        (f"{name}, {frames}", pipelines)
        for name, setting in result.get("settings", {}).items()
        if isinstance(setting, dict) and "frames" in setting
        for frames, pipelines in setting["frames"].items()
    ]
    if not panels:
        return None
    columns = min(4, len(panels))
    grid_rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(grid_rows, columns, figsize=(4.5 * columns, 3.6 * grid_rows), squeeze=False)
    for axis in axes.flat[len(panels) :]:
        axis.axis("off")
    for axis, (title, pipelines) in zip(axes.flat, panels, strict=False):
        for pipeline, rows in pipelines.items():
            counts = [r["servers"] for r in rows]
            axis.plot(counts, [r["total_ms"] for r in rows], "o-", label=f"{pipeline}: frame")
            axis.plot(counts, [r["servers_ms"] for r in rows], "s:", label=f"{pipeline}: servers stage")
        reference = pipelines[REFERENCE]
        axis.plot([r["servers"] for r in reference], [r["ideal_ms"] for r in reference], "k--", label="ideal")
        axis.set_xticks(COUNTS)
        axis.set_xlabel("servers")
        axis.set_ylabel("ms per frame")
        axis.set_title(title, fontsize=8)
        axis.legend(fontsize=6)
    return save_figure(fig, out / "scaling.png")


SECTION = register(Section("scaling", "Scaling over budgeted edge servers on the testbed", run, markdown, plot))
