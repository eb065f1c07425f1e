"""What this machine cannot hold, projected: one frame over 2..16 edge servers, 640x480 to 4K, uplinks
of 10 to 1000 Mbit/s (``testbed/simulator.py``), fed by the cost model the scaling section measured.

First the model is checked against every point the scaling section measured on the testbed
(``<out>/scaling.json``, this run's or an earlier one's): for each setting, frame set, pipeline and
N, the servers stage it predicts from the servers' fitted costs (seconds per call and per
megapixel, learned by the largest pipeline of that setting; a shaped link's transfer added from its
rate) against the measured median. Then the projections, with the 0.25-core server of the
compute-bound setting and the client's measured time for its pipeline: at ``--work-size 416``
every frame is shrunk to 416 px on its long side, so the servers' work does not grow with the
camera; at native size it does, and more servers pay. The client's uplink is shared by its chunks;
of N servers the projection uses the k <= N that finish first (the partition itself assumes a link
per server). The client's own stages are held at what was measured at 416 px (sensitive detection
at native size grows with the frame: not modelled).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from privinfer.bench.context import BenchContext
from privinfer.bench.registry import Section, register
from privinfer.bench.scaling import BUDGET, REFERENCE, SETTINGS
from privinfer.plotting import save_figure
from privinfer.testbed import rate_bits
from privinfer.testbed.simulator import FrameModel, ServerModel, simulate_frame

COUNTS = (1, 2, 4, 8, 12, 16)
RESOLUTIONS = {"640x480": (640, 480), "1280x720": (1280, 720), "1920x1080": (1920, 1080), "3840x2160": (3840, 2160)}
UPLINKS = {"10 Mbit/s": 10e6, "100 Mbit/s": 100e6, "1000 Mbit/s": 1000e6}
WORK_SIZES = {"--work-size 416": 416, "native": None}
MODEL_FRAMES = "street video"  # whose fitted costs feed the projections


def _servers(model: dict, links: dict[str, str | None]) -> dict[str, ServerModel]:
    return {
        server: ServerModel(m["call_s"], m["s_per_mpx"], rate_bits(links[server]) if links.get(server) else None)
        for server, m in model.items()
    }


def _compute_model(results: dict, frames: str, pipeline: str, budget: float | None) -> dict | None:
    """A setting's fitted per-server costs without transfer: from the unshaped setting whose servers
    have ``budget`` (each server's own model), or None."""
    for setting in SETTINGS:
        if setting.bandwidths[0] is not None or budget not in setting.budgets:
            continue
        measured = results["settings"].get(setting.name, {})
        model = measured.get("cost_models", {}).get(f"{frames}, {pipeline}")
        if model:
            return model
    return None


def check(results: dict) -> list[dict]:
    """Every measured testbed point against the model's prediction of its servers stage."""
    points = []
    for setting in SETTINGS:
        measured = results["settings"].get(setting.name, {})
        if "frames" not in measured:
            continue
        addresses = measured["addresses"]
        links = dict(zip(addresses, setting.bandwidths, strict=True))
        for frames, pipelines in measured["frames"].items():
            for pipeline, rows in pipelines.items():
                own = measured["cost_models"].get(f"{frames}, {pipeline}", {})
                if setting.bandwidths[0] is None:
                    compute = own
                else:  # the shaped setting's fit holds its link; compute from the unshaped one, same budget
                    budgets = dict(zip(addresses, setting.budgets, strict=True))
                    reference = _compute_model(results, frames, pipeline, setting.budgets[0]) or own
                    by_budget = {v["cpu"]: v for v in reference.values()}
                    compute = {a: by_budget.get(budgets[a], own.get(a)) for a in addresses}
                servers = _servers({a: m for a, m in compute.items() if m is not None}, links)
                for row in rows:
                    if not all(a in servers for a in addresses[: row["servers"]]):
                        continue  # a server the largest pipeline lost: no fitted cost to feed
                    width, height = _work_size(row["frame_size"], 416)
                    frame = FrameModel(width, height, row["client_ms"] / 1e3, _answer_bytes(row))
                    chosen = [servers[a] for a in addresses[: row["servers"]]]
                    simulated = simulate_frame(frame, chosen)
                    points.append({
                        "setting": setting.name, "frames": frames, "pipeline": pipeline, "servers": row["servers"],
                        "measured_ms": row["servers_ms"], "simulated_ms": simulated.servers_s * 1e3,
                        "error": simulated.servers_s * 1e3 / row["servers_ms"] - 1,
                        "measured_chunks": row["chunks"], "simulated_chunks": simulated.chunks,
                    })  # fmt: skip
    return points


def project(results: dict) -> dict:
    """Servers-stage and frame ms for N servers of the 0.25-core model, by resolution, work size, uplink."""
    model = _compute_model(results, MODEL_FRAMES, REFERENCE, BUDGET)
    if model is None:
        return {}
    server = next(ServerModel(m["call_s"], m["s_per_mpx"]) for m in model.values() if m["cpu"] == BUDGET)
    rows = results["settings"][SETTINGS[0].name]["frames"][MODEL_FRAMES][REFERENCE]
    client_s = rows[0]["client_ms"] / 1e3
    answer = _answer_bytes(rows[0])
    out: dict = {"server": {"call_s": server.call_s, "s_per_mpx": server.s_per_mpx}, "client_s": client_s, "grid": []}
    for resolution, size in RESOLUTIONS.items():
        for work_name, work_size in WORK_SIZES.items():
            width, height = _work_size(list(size), work_size)
            for uplink, bits in UPLINKS.items():
                base = None
                frame = FrameModel(width, height, client_s, answer)
                one = ServerModel(server.call_s, server.s_per_mpx, bits)
                for count in COUNTS:
                    # The partition does not know the uplink is shared: of N servers, use the k <= N that
                    # finish the frame first (what a client that learned its uplink would choose).
                    simulated = min((simulate_frame(frame, [one] * k, bits) for k in range(1, count + 1)),
                                    key=lambda f: f.total_s)  # fmt: skip
                    base = base or simulated.total_s
                    out["grid"].append({
                        "resolution": resolution, "work": work_name, "uplink": uplink, "servers": count,
                        "servers_ms": simulated.servers_s * 1e3, "frame_ms": simulated.total_s * 1e3,
                        "speedup": base / simulated.total_s, "chunks": simulated.chunks,
                    })  # fmt: skip
    return out


def run(ctx: BenchContext) -> dict:
    path = ctx.options.out / "scaling.json"
    try:
        results = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"skipped": f"no testbed measurements in {path}: run `privinfer bench --only scaling` first (root)"}
    if "settings" not in results or not any("frames" in s for s in results["settings"].values()):
        return {"skipped": f"{path} holds no budgeted testbed measurements: run `privinfer bench --only scaling`"}
    return {"measured_in": str(path), "measured_created": results.get("created"), **run_from(results)}


def run_from(results: dict) -> dict:
    """The check and the projections from the scaling section's ``results``."""
    points = check(results)
    errors = [abs(p["error"]) for p in points]
    return {
        "check": points,
        "median_abs_error": statistics.median(errors) if errors else None,
        "max_abs_error": max(errors, default=None),
        "within_15_percent": sum(e <= 0.15 for e in errors),
        "projection": project(results),
    }


def markdown(result: dict) -> list[str]:
    if "skipped" in result:
        return [f"Skipped: {result['skipped']}."]
    lines = [
        f"Model against {len(result['check'])} measured testbed points (servers stage): median error "
        f"{result['median_abs_error']:.1%}, largest {result['max_abs_error']:.1%}; {result['within_15_percent']} "
        "within 15%.",
        "",
        "| setting | frames | pipeline | N | measured ms | simulated ms | error | chunks measured / simulated |",
        "|---" * 8 + "|",
    ]
    lines += [
        f"| {p['setting']} | {p['frames']} | {p['pipeline']} | {p['servers']} | {p['measured_ms']:.1f} | "
        f"{p['simulated_ms']:.1f} | {p['error']:+.1%} | {p['measured_chunks']} / {p['simulated_chunks']} |"
        for p in result["check"]
    ]
    projection = result.get("projection") or {}
    if projection:
        server = projection["server"]
        lines += [
            "",
            f"Projection with servers of {BUDGET} core ({server['call_s'] * 1e3:.1f} ms a call, "
            f"{server['s_per_mpx'] * 1e3:.0f} ms a megapixel), frame ms (speed-up over one server):",
            "",
            "| frame | work size | uplink | " + " | ".join(f"N={n}" for n in COUNTS) + " |",
            "|---" * (3 + len(COUNTS)) + "|",
        ]
        grid = projection["grid"]
        keys = sorted({(g["resolution"], g["work"], g["uplink"]) for g in grid}, key=_order)
        for key in keys:
            cells = [g for g in grid if (g["resolution"], g["work"], g["uplink"]) == key]
            row = " | ".join(f"{g['frame_ms']:.0f} ({g['speedup']:.1f}x)" for g in cells)
            lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {row} |")
    return lines


def _order(key: tuple[str, str, str]) -> tuple[int, int, int]:
    return (list(RESOLUTIONS).index(key[0]), list(WORK_SIZES).index(key[1]), list(UPLINKS).index(key[2]))


def plot(result: dict, out: Path) -> str | None:
    import matplotlib.pyplot as plt

    grid = (result.get("projection") or {}).get("grid")
    if not grid:
        return None
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    check = result["check"]
    axes[0].scatter([p["measured_ms"] for p in check], [p["simulated_ms"] for p in check], s=12)
    top = max(max(p["measured_ms"], p["simulated_ms"]) for p in check)
    axes[0].plot([0, top], [0, top], "k--", linewidth=1)
    axes[0].set_xlabel("measured servers stage (ms)")
    axes[0].set_ylabel("simulated (ms)")
    axes[0].set_title("model against the testbed", fontsize=9)
    for axis, work in zip(axes[1:], WORK_SIZES, strict=True):
        for resolution in RESOLUTIONS:
            for uplink, style in zip(UPLINKS, ("o:", "s--", "^-"), strict=True):
                cells = [g for g in grid if (g["resolution"], g["work"], g["uplink"]) == (resolution, work, uplink)]
                if uplink == "100 Mbit/s" or resolution == "3840x2160":
                    axis.plot([g["servers"] for g in cells], [g["frame_ms"] for g in cells], style,
                              label=f"{resolution}, {uplink}", markersize=3)  # fmt: skip
        axis.set_yscale("log")
        axis.set_xlabel("servers of 0.25 core")
        axis.set_ylabel("frame ms")
        axis.set_title(f"projection, {work}", fontsize=9)
        axis.legend(fontsize=6)
    return save_figure(fig, out / "simulate.png")


def _work_size(size: list[int], limit: int | None) -> tuple[int, int]:
    width, height = size
    scale = 1.0 if limit is None or max(width, height) <= limit else limit / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _answer_bytes(row: dict) -> float:
    chunks = sum(int(k) * v for k, v in row["chunks"].items()) / max(1, sum(row["chunks"].values()))
    return row["output_bytes"] / max(chunks, 1.0)


SECTION = register(
    Section("simulate", "Simulated frames over 2..16 servers, checked against the testbed", run, markdown, plot)
)
