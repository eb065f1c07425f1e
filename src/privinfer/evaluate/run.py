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
from privinfer.evaluate.config import EvaluationConfig, obfuscator_entry
from privinfer.evaluate.latency import chunk_ms
from privinfer.evaluate.partial import PartialResults
from privinfer.evaluate.privacy import (
    PrivacyData,
    attack_resolution,
    evaluate_floor,
    evaluate_privacy,
    identity_reference,
)
from privinfer.evaluate.utility import detections_on, evaluate_utility, pseudo_ground_truth, true_map
from privinfer.metrics.coco_map import CocoDataset
from privinfer.metrics.embedders import create_embedder
from privinfer.metrics.identity import FaceDescriptors, identity_available
from privinfer.models import nanodet
from privinfer.obfuscate import create_obfuscator
from privinfer.run_record import write_run_record
from privinfer.serve import create_pool
from privinfer.train.chunks import resized, to_unit

EMBEDDERS = ("mobilenet_v2", "efficientnet_lite0")


def _subset(total: int, count: int, seed: int) -> np.ndarray:
    """Indices of at most ``count`` of ``total`` items, drawn with ``seed``, in order."""
    if total <= count:
        return np.arange(total)
    return np.sort(np.random.default_rng(seed).choice(total, count, replace=False))


def _face_descriptors(config: EvaluationConfig, progress: Callable[[str], None]) -> FaceDescriptors | None:
    """dlib's face recogniser, or None when the identity metric is off.

    A quick run (CI) skips the metric when dlib or its models are missing; a full run needs them.

    Raises:
        AssetMissingError: a full run's dlib models are not cached.
    """
    if not config.identity:
        return None
    if config.quick and not identity_available():
        progress("identity: skipped in this quick run (fetch with: privinfer assets fetch dlib-face-recognition "
                 "dlib-landmarks-5)")  # fmt: skip
        return None
    return FaceDescriptors.load()


def run_evaluation(config: EvaluationConfig, progress: Callable[[str], None] = print) -> dict:
    config = config.quickened() if config.quick else config
    out = Path(config.out_dir)
    write_run_record(out, config)
    torch.manual_seed(config.seed)
    root = Path(config.corpus_root) if config.corpus_root else None
    # Models and labelled data first: a missing asset or a bad COCO file fails before any training.
    describe = _face_descriptors(config, progress)
    coco = CocoDataset.load(config.coco_annotations, config.coco_images) if config.coco_annotations else None

    def chunks(split: str, count: int) -> tuple[np.ndarray, list[str]]:
        loaded = load_split(split, root)
        picked = loaded.subset(_subset(len(loaded), count, config.seed))
        return resized(picked.images, config.chunk), picked.persons

    (faces_train, _), (natural, _) = chunks("faces-train", config.max_train), chunks("natural", config.max_train)
    data = PrivacyData(faces_train, natural, *chunks("faces-test", config.max_test))
    scenes = list(load_split("scenes", root).images)[: config.scene_frames]
    progress(f"data: {len(data.faces_train)} train faces, {len(data.natural)} natural, "
             f"{len(data.faces_test)} test faces, {len(scenes)} scene frames")  # fmt: skip
    model = nanodet.load_nanodet()
    embedders = {name: create_embedder(name) for name in EMBEDDERS}
    settings = AttackTraining(steps=config.attack_steps, batch_size=config.attack_batch, seed=config.seed)
    identity = identity_reference(data, settings, describe) if describe is not None else None
    # Each finished obfuscator is saved at once, so an interrupted run resumes where it stopped.
    partial = PartialResults(out, json.dumps(asdict(config), sort_keys=True, default=str))
    summary: dict = partial.summary
    rebuilt_grid: dict[str, torch.Tensor] = partial.pictures

    with create_pool("threads", 1) as pool:
        unaltered, unaltered_frame_ms = detections_on(scenes, "unaltered", {}, pool, private=False)
        reference = pseudo_ground_truth(unaltered)
        _, unaltered_private_ms = detections_on(scenes, "unaltered", {}, pool, private=True)
        unaltered_true_map = true_map(coco, "unaltered", {}, pool, private=False).to_json() if coco else None
        baseline_chunk_ms = chunk_ms(create_obfuscator("unaltered"), model, data.faces_test[0], config.latency_repeats)
        if "floor" not in summary:
            progress("floor ...")
            summary["floor"] = {"strong": evaluate_floor(data, embedders, settings, identity).to_json()}
            partial.save()
        for name, entry in config.obfuscators.items():
            kind, options = obfuscator_entry(name, entry)
            if name in summary:
                progress(f"{name}: done in an earlier run of this config")
                continue
            if kind == "channel-mask" and "weights" in options and not Path(options["weights"]).is_file():
                progress(f"skipping channel-mask: no trained weights at {options.get('weights')} (run privinfer train)")
                continue
            progress(f"{name} ...")
            obfuscator = create_obfuscator(kind, **_resolved(kind, options, model, config.chunk))
            scores, rebuilt = evaluate_privacy(obfuscator, model, data, embedders, settings,
                                               config.whitebox_images, config.whitebox_steps, identity)  # fmt: skip
            utility = evaluate_utility(scenes, kind, _resolved(kind, options, model, 256), pool, reference, coco)
            latency = chunk_ms(obfuscator, model, data.faces_test[0], config.latency_repeats) - baseline_chunk_ms
            summary[name] = {
                "obfuscator": kind,
                **{attack: s.to_json() for attack, s in scores.items()},
                "map_degradation_pct": utility.map_degradation_pct,
                "map50_degradation_pct": utility.map50_degradation_pct,
                "latency_ms": latency,
                "latency_ms_per_frame": utility.obfuscate_ms_per_frame - unaltered_private_ms,
            }
            if utility.true_map is not None:
                summary[name]["true_map"] = utility.true_map.to_json()
            rebuilt_grid[name] = rebuilt["strong"]
            partial.save()
            strong = scores["strong"]
            faces = "" if strong.identity is None else f", identity {strong.identity:.3f}, re-id {strong.reid_rate:.2f}"
            progress(f"  strong SSIM {strong.ssim:.3f}{faces}, weak {scores['weak'].ssim:.3f}, "
                     f"mAP degradation {utility.map_degradation_pct:.1f}%, +{latency:.2f} ms/chunk")  # fmt: skip

    size = attack_resolution(config.chunk, settings)
    originals = torch.nn.functional.interpolate(to_unit(data.faces_test), size=(size, size), mode="area")
    sweep = _sweep(out)
    summary["meta"] = {"config": asdict(config), "unaltered_frame_ms": unaltered_frame_ms,
                       "attack_resolution": size, "sweep": sweep}  # fmt: skip
    if unaltered_true_map is not None:
        summary["meta"]["unaltered_true_map"] = unaltered_true_map
    report.write_summary(out, summary)
    report.write_markdown(out, summary, _notes(config, data, scenes, size, identity is not None, coco))
    report.plot_pareto(out, summary, sweep)
    report.image_grid(out, originals, rebuilt_grid)
    partial.finish()
    return summary


def _resolved(name: str, options: dict, model: nanodet.NanoDet, input_size: int) -> dict:
    if name == "pca" and "basis" not in options:
        from privinfer.obfuscate.pca_fitting import default_basis

        return {"basis": default_basis(model, input_size, options.get("k", 16))}
    return dict(options)


def _sweep(out: Path) -> list[dict]:
    path = out / "sweep.json"
    return json.loads(path.read_text()) if path.is_file() else []


def _notes(
    config: EvaluationConfig, data: PrivacyData, scenes, size: int, identity: bool, coco: CocoDataset | None
) -> list[str]:
    persons = len(set(data.test_persons))
    notes = [
        f"{'QUICK RUN (tiny subsets, few steps): figures are not meaningful. ' if config.quick else ''}"
        f"Chunks {config.chunk} px; attackers rebuild at {size} px and every score is at that resolution. "
        f"{len(data.faces_train)} training-person face chunks (+ flips), {len(data.natural)} natural-photo chunks, "
        f"{len(data.faces_test)} held-out-person chunks; {len(scenes)} scene frames for utility. "
        f"Attack training: {config.attack_steps} steps, batch {config.attack_batch}. Seed {config.seed}.",
        f"Median scene frame through the unaltered pipeline: see summary.json meta. "
        f"Latency: median over {config.latency_repeats} runs on this machine's CPU.",
        (
            f"Identity: cosine of dlib face descriptors, rebuilt vs original (different people already score "
            f"about 0.85: compare with the floor); re-identification: nearest person's mean original "
            f"descriptor among {persons} held-out persons, the rate averaged over persons (they are not equally "
            f"frequent), so that guessing scores 1/persons = {1 / max(persons, 1):.3f}."
            if identity
            else "Identity and re-identification are not measured in this run (identity = false, or a quick "
            "run without dlib's models)."
        ),
    ]
    if coco is not None:
        notes.append(
            f"True mAP: pycocotools COCOeval (bbox) on {len(coco.frames())} images of {coco.annotations}, "
            f"over its {len(coco.category_ids)} categories the detector knows."
        )
    return notes
