"""Writing the evaluation: summary.json, a markdown report (privacy per attack, utility, true mAP
on a labelled set when there is one, latency), a Pareto plot of privacy (strong SSIM) against
utility (mAP degradation), and an image grid of what attackers get."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from privinfer.plotting import save_figure

PAPER = {"strong_ssim": 0.116, "weak_ssim": 0.169, "map_degradation_pct": 11.11, "latency_ms": 4.7}


def write_summary(out: Path, summary: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))


PRIVACY_HEADER = ("| obfuscator | SSIM | PSNR dB | SIM MobileNetV2 | SIM EffNet-Lite0 | identity | re-id (chance) |",
                  "|---|---|---|---|---|---|---|")  # fmt: skip


def _row(name: str, entry: dict, attack: str) -> str:
    scores = entry.get(attack)
    if not scores:
        return f"| {name} | – | – | – | – | – | – |"
    sim = scores["sim"]
    return (f"| {name} | {scores['ssim']:.3f} | {scores['psnr']:.2f} | {sim.get('mobilenet_v2', float('nan')):.3f} "
            f"| {sim.get('efficientnet_lite0', float('nan')):.3f} | {_identity_cells(scores)} |")  # fmt: skip


def _identity_cells(scores: dict) -> str:
    """Identity and re-identification cells; a dash where the run did not measure them."""
    if "identity" not in scores:
        return "– | –"
    return f"{scores['identity']:.3f} | {scores['reid_rate']:.2f} ({scores['reid_chance']:.2f})"


def _true_map(scores: dict | None) -> str:
    return "– | –" if scores is None else f"{scores['map50']:.3f} | {scores['map']:.3f}"


def write_markdown(out: Path, summary: dict, notes: list[str]) -> None:
    names = [n for n in summary if n not in ("floor", "meta")]
    floor = summary["floor"]
    lines = ["# Privacy-utility-latency evaluation", "", *notes, ""]
    for attack, title in (("strong", "Privacy under the strong attacker"), ("weak", "Privacy under the weak attacker"),
                          ("whitebox", "Privacy under white-box optimisation")):  # fmt: skip
        lines += [f"## {title} (held-out persons; lower is more private)", "", *PRIVACY_HEADER]
        lines += [_row(n, summary[n], attack) for n in names]
        lines += [_row("floor (no information)", {attack: floor["strong"]}, attack), ""]
    lines += ["## Utility (mAP vs the unaltered pipeline on scene frames, every tile privatized)", "",
              "| obfuscator | mAP@0.5 degradation % | mAP@[.5:.95] degradation % |", "|---|---|---|"]  # fmt: skip
    lines += [
        f"| {n} | {summary[n]['map50_degradation_pct']:.2f} | {summary[n]['map_degradation_pct']:.2f} |" for n in names
    ]
    unaltered = summary.get("meta", {}).get("unaltered_true_map")
    if unaltered is not None:
        lines += ["", "## True mAP on the labelled COCO-format set (every tile privatized; higher is better)", "",
                  "| pipeline | mAP@0.5 | mAP@[.5:.95] |", "|---|---|---|",
                  f"| unaltered pipeline, raw tiles | {_true_map(unaltered)} |"]  # fmt: skip
        lines += [f"| {n} | {_true_map(summary[n].get('true_map'))} |" for n in names]
    lines += ["", "## Latency increment over unaltered features (client, median ms)", "",
              "| obfuscator | per chunk | per frame |", "|---|---|---|"]  # fmt: skip
    lines += [f"| {n} | {summary[n]['latency_ms']:.2f} | {summary[n]['latency_ms_per_frame']:.2f} |" for n in names]
    lines += ["", f"Reference paper: strong SSIM {PAPER['strong_ssim']}, weak SSIM {PAPER['weak_ssim']}, "
              f"{PAPER['map_degradation_pct']}% mAP degradation, +{PAPER['latency_ms']} ms.", "",
              "![Pareto](pareto.png)", "", "![Reconstructions](reconstructions.png)", ""]  # fmt: skip
    (out / "report.md").write_text("\n".join(lines))


def plot_pareto(out: Path, summary: dict, sweep: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(7, 4.5))
    # Settings of one obfuscator (a baseline sweep) are joined by a line, in order of utility loss.
    by_kind: dict[str, list[dict]] = {}
    for name, entry in summary.items():
        if name not in ("floor", "meta"):
            by_kind.setdefault(entry.get("obfuscator", name), []).append(entry)
    for kind, entries in by_kind.items():
        entries = sorted(entries, key=lambda e: e["map_degradation_pct"])
        axis.plot([e["map_degradation_pct"] for e in entries], [e["strong"]["ssim"] for e in entries],
                  "o-" if len(entries) > 1 else "o", label=kind)  # fmt: skip
    if sweep:
        axis.plot(
            [p["map_degradation_pct"] for p in sweep], [p["strong_ssim"] for p in sweep], "k--", label="alpha sweep"
        )
    axis.axhline(summary["floor"]["strong"]["ssim"], color="grey", linestyle=":", label="floor")
    axis.set_xlabel("mAP@[.5:.95] degradation (%)")
    axis.set_ylabel("strong-attacker SSIM")
    axis.legend(fontsize=7)
    save_figure(fig, out / "pareto.png")


def image_grid(out: Path, originals: torch.Tensor, rebuilt: dict[str, torch.Tensor], count: int = 6) -> None:
    """Rows: originals, then each obfuscator's strong reconstruction of the same chunks."""
    from privinfer.images import write_image

    rows = [originals[:count], *[r[:count] for r in rebuilt.values()]]
    tiles = [torch.cat(list(row.clamp(0, 1)), dim=2) for row in rows]
    grid = torch.cat(tiles, dim=1).permute(1, 2, 0).numpy()
    write_image(out / "reconstructions.png", (grid * 255).astype(np.uint8))
    (out / "reconstructions.txt").write_text("rows: original, " + ", ".join(rebuilt) + "\n")
