"""`privinfer evaluate`: every obfuscator against every attack, plus utility and latency.

Writes ``<out>/summary.json``, ``report.md``, ``pareto.png``, ``reconstructions.png`` and the run
record (config, seed, package versions).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from privinfer.attack.learned import AttackTraining
from privinfer.data.corpus import load_split
from privinfer.evaluate import report
from privinfer.evaluate.config import EvaluationConfig
from privinfer.evaluate.latency import chunk_ms
from privinfer.evaluate.privacy import PrivacyData, attack_resolution, evaluate_floor, evaluate_privacy
from privinfer.evaluate.utility import detections_on, evaluate_utility
from privinfer.metrics.embedders import create_embedder
from privinfer.models import nanodet
from privinfer.obfuscate import create_obfuscator
from privinfer.run_record import write_run_record
from privinfer.serve import create_pool
from privinfer.train.chunks import resized, to_unit

EMBEDDERS = ("mobilenet_v2", "efficientnet_lite0")


def _subset(images: np.ndarray, count: int, seed: int) -> np.ndarray:
    if len(images) <= count:
        return images
    return images[np.sort(np.random.default_rng(seed).choice(len(images), count, replace=False))]


def run_evaluation(config: EvaluationConfig, progress: Callable[[str], None] = print) -> dict:
    config = config.quickened() if config.quick else config
    out = Path(config.out_dir)
    write_run_record(out, config)
    torch.manual_seed(config.seed)
    root = Path(config.corpus_root) if config.corpus_root else None

    def chunks(split: str, count: int) -> np.ndarray:
        return resized(_subset(load_split(split, root).images, count, config.seed), config.chunk)

    data = PrivacyData(chunks("faces-train", config.max_train), chunks("natural", config.max_train),
                       chunks("faces-test", config.max_test))  # fmt: skip
    scenes = list(load_split("scenes", root).images)[: config.scene_frames]
    progress(f"data: {len(data.faces_train)} train faces, {len(data.natural)} natural, "
             f"{len(data.faces_test)} test faces, {len(scenes)} scene frames")  # fmt: skip
    model = nanodet.load_nanodet()
    embedders = {name: create_embedder(name) for name in EMBEDDERS}
    settings = AttackTraining(steps=config.attack_steps, batch_size=config.attack_batch, seed=config.seed)
    # Each finished obfuscator is saved at once, so an interrupted run resumes where it stopped.
    partial = _Partial(out, config)
    summary: dict = partial.summary
    rebuilt_grid: dict[str, torch.Tensor] = partial.rebuilt

    with create_pool("threads", 1) as pool:
        reference, unaltered_frame_ms = detections_on(scenes, "unaltered", {}, pool, private=False)
        _, unaltered_private_ms = detections_on(scenes, "unaltered", {}, pool, private=True)
        baseline_chunk_ms = chunk_ms(create_obfuscator("unaltered"), model, data.faces_test[0], config.latency_repeats)
        if "floor" not in summary:
            progress("floor ...")
            summary["floor"] = {"strong": evaluate_floor(data, embedders, settings).to_json()}
            partial.save()
        for name, options in config.obfuscators.items():
            if name in summary:
                progress(f"{name}: done in an earlier run of this config")
                continue
            if name == "channel-mask" and "weights" in options and not Path(options["weights"]).is_file():
                progress(f"skipping channel-mask: no trained weights at {options.get('weights')} (run privinfer train)")
                continue
            progress(f"{name} ...")
            obfuscator = create_obfuscator(name, **_resolved(name, options, model, config.chunk))
            scores, rebuilt = evaluate_privacy(obfuscator, model, data, embedders, settings,
                                               config.whitebox_images, config.whitebox_steps)  # fmt: skip
            utility = evaluate_utility(scenes, name, _resolved(name, options, model, 256), pool, reference)
            latency = chunk_ms(obfuscator, model, data.faces_test[0], config.latency_repeats) - baseline_chunk_ms
            summary[name] = {
                **{attack: s.to_json() for attack, s in scores.items()},
                "map_degradation_pct": utility.map_degradation_pct,
                "map50_degradation_pct": utility.map50_degradation_pct,
                "latency_ms": latency,
                "latency_ms_per_frame": utility.obfuscate_ms_per_frame - unaltered_private_ms,
            }
            rebuilt_grid[name] = rebuilt["strong"]
            partial.save()
            progress(f"  strong SSIM {scores['strong'].ssim:.3f}, weak {scores['weak'].ssim:.3f}, "
                     f"mAP degradation {utility.map_degradation_pct:.1f}%, +{latency:.2f} ms/chunk")  # fmt: skip

    size = attack_resolution(config.chunk, settings)
    originals = torch.nn.functional.interpolate(to_unit(data.faces_test), size=(size, size), mode="area")
    sweep = _sweep(out)
    summary["meta"] = {"config": asdict(config), "unaltered_frame_ms": unaltered_frame_ms,
                       "attack_resolution": size, "sweep": sweep}  # fmt: skip
    report.write_summary(out, summary)
    report.write_markdown(out, summary, _notes(config, data, scenes, size))
    report.plot_pareto(out, summary, sweep)
    report.image_grid(out, originals, rebuilt_grid)
    partial.finish()
    return summary


class _Partial:
    """The results of a run in progress, on disk, keyed by the run's config."""

    def __init__(self, out: Path, config: EvaluationConfig) -> None:
        self.path, self.rebuilt_path = out / "summary.partial.json", out / "reconstructions.partial.pt"
        self.key = json.dumps(asdict(config), sort_keys=True, default=str)
        self.summary: dict = {}
        self.rebuilt: dict[str, torch.Tensor] = {}
        if self.path.is_file():
            saved = json.loads(self.path.read_text())
            if saved.get("config") == self.key:
                self.summary = saved["summary"]
                if self.rebuilt_path.is_file():
                    self.rebuilt = torch.load(self.rebuilt_path, weights_only=True)

    def save(self) -> None:
        self.path.write_text(json.dumps({"config": self.key, "summary": self.summary}))
        torch.save(self.rebuilt, self.rebuilt_path)

    def finish(self) -> None:
        self.path.unlink(missing_ok=True)
        self.rebuilt_path.unlink(missing_ok=True)


def _resolved(name: str, options: dict, model: nanodet.NanoDet, input_size: int) -> dict:
    if name == "pca" and "basis" not in options:
        from privinfer.obfuscate.pca_fitting import default_basis

        return {"basis": default_basis(model, input_size, options.get("k", 16))}
    return dict(options)


def _sweep(out: Path) -> list[dict]:
    path = out / "sweep.json"
    return json.loads(path.read_text()) if path.is_file() else []


def _notes(config: EvaluationConfig, data: PrivacyData, scenes, size: int) -> list[str]:
    return [
        f"{'QUICK RUN (tiny subsets, few steps): figures are not meaningful. ' if config.quick else ''}"
        f"Chunks {config.chunk} px; attackers rebuild at {size} px and every score is at that resolution. "
        f"{len(data.faces_train)} training-person face chunks (+ flips), {len(data.natural)} natural-photo chunks, "
        f"{len(data.faces_test)} held-out-person chunks; {len(scenes)} scene frames for utility. "
        f"Attack training: {config.attack_steps} steps, batch {config.attack_batch}. Seed {config.seed}.",
        f"Median scene frame through the unaltered pipeline: see summary.json meta. "
        f"Latency: median over {config.latency_repeats} runs on this machine's CPU.",
        "Identity similarity (a face-recognition embedding) is not measured in this version.",
    ]
