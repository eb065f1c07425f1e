"""`privinfer evaluate --level region`: region privacy, frame-level utility, latency and bytes of
every obfuscator, as the product sends a sensitive region (`privinfer.client.privatize`).

Writes ``<out>/summary.json``, ``report.md``, ``pareto.png`` (frame mAP degradation against the
strong attacker's region SSIM above the inpainting floor), ``reconstructions.png`` and the run
record. Each finished obfuscator is saved at once (``*.partial.*``, kept after the run), so an
interrupted run resumes where it stopped and an obfuscator added to the config later is all that
a second run computes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from privinfer.attack.region import RegionAttacker, RegionAttackTraining, TrainedAttacker
from privinfer.data.corpus import CorpusSplit, load_split
from privinfer.data.people_photos import people_photos
from privinfer.evaluate import region_report
from privinfer.evaluate.config import obfuscator_entry, utility_entry
from privinfer.evaluate.frame_utility import frame_utility
from privinfer.evaluate.partial import PartialResults
from privinfer.evaluate.region_config import RegionEvaluationConfig
from privinfer.evaluate.region_privacy import RegionData, attack_floor, attack_region
from privinfer.metrics.embedders import create_embedder
from privinfer.metrics.identity import FaceDescriptors, IdentityReference, identity_available
from privinfer.models import nanodet
from privinfer.obfuscate import create_obfuscator
from privinfer.run_record import write_run_record
from privinfer.train.chunks import resized, to_unit
from privinfer.train.region_chunks import crop_region

EMBEDDERS = ("mobilenet_v2", "efficientnet_lite0")


def capped_per_person(split: CorpusSplit, cap: int, seed: int) -> CorpusSplit:
    """At most ``cap`` crops of each person (spread over their frames), in corpus order."""
    rng = np.random.default_rng(seed)
    persons = np.asarray(split.persons)
    keep = []
    for person in sorted(set(split.persons)):
        index = np.flatnonzero(persons == person)
        keep.extend(index if len(index) <= cap else np.sort(rng.choice(index, cap, replace=False)))
    return split.subset(np.sort(np.asarray(keep, dtype=int)))


def _first(split: CorpusSplit, count: int, seed: int) -> np.ndarray:
    if len(split) <= count:
        return split.images
    return split.images[np.sort(np.random.default_rng(seed).choice(len(split), count, replace=False))]


def load_region_data(config: RegionEvaluationConfig) -> RegionData:
    root = Path(config.corpus_root) if config.corpus_root else None
    test = capped_per_person(load_split("faces-test", root), config.max_per_person, config.seed)
    return RegionData(
        faces_train=resized(_first(load_split("faces-train", root), config.max_train, config.seed), config.chunk),
        natural=resized(_first(load_split("natural", root), config.max_natural, config.seed), config.chunk),
        faces_test=resized(test.images, config.chunk),
        test_persons=tuple(test.persons),
        region=crop_region(config.chunk),
    )


def _identity(config: RegionEvaluationConfig, data: RegionData, size: int, progress) -> IdentityReference | None:
    if not config.identity or (config.quick and not identity_available()):
        if config.identity:
            progress("identity: skipped in this quick run (dlib or its models are not cached)")
        return None
    originals = torch.nn.functional.interpolate(to_unit(data.faces_test), size=(size, size), mode="area")
    return IdentityReference.build(FaceDescriptors.load(), originals, data.test_persons)


def run_region_evaluation(config: RegionEvaluationConfig, progress: Callable[[str], None] = print) -> dict:
    config = config.quickened() if config.quick else config
    out = Path(config.out_dir)
    write_run_record(out, config)
    torch.manual_seed(config.seed)
    data = load_region_data(config)
    settings = RegionAttackTraining(max_steps=config.attack_max_steps, batch_size=config.attack_batch,
                                    eval_every=config.attack_eval_every, patience=config.attack_patience,
                                    seed=config.seed)  # fmt: skip
    size = config.chunk // 8 * 2**settings.stages
    progress(f"data: {len(data.faces_train)} training-person crops (+ flips), {len(data.natural)} natural, "
             f"{len(data.faces_test)} held-out crops of {len(set(data.test_persons))} persons")  # fmt: skip
    identity = _identity(config, data, size, progress)
    model = nanodet.load_nanodet()
    embedders = {name: create_embedder(name) for name in EMBEDDERS}
    partial = _Partial(out, config)
    summary, pictures = partial.summary, partial.pictures
    if "floor" not in summary:
        progress("floor (inpainting: the filled chunk, no patch) ...")
        floor = attack_floor(model, data, embedders, settings, identity, progress)
        summary["floor"] = {"strong": floor.scores["strong"].to_json()}
        pictures["fill (floor)"] = floor.strong_pictures
        partial.save()
    unaltered = partial.unaltered_attacker(settings)
    for label, entry in config.obfuscators.items():
        kind, options = obfuscator_entry(label, entry)
        if label in summary and summary[label].get("options") == options:
            progress(f"{label}: done in an earlier run of this config")
            continue
        progress(f"{label} ...")
        obfuscator = create_obfuscator(kind, **_resolved(kind, options, model))
        result = attack_region(obfuscator, model, data, embedders, settings, identity, unaltered,
                               config.whitebox_images, config.whitebox_steps, progress)  # fmt: skip
        if label == "unaltered":
            unaltered = result.strong
            partial.keep_unaltered_attacker(unaltered)
        # A view that carries nothing of the region beyond its context (a token that reads no
        # features) is attacked by one more inpainting attacker: the floor is the best of them.
        context_only = not getattr(obfuscator, "reads_features", True)
        summary[label] = {"obfuscator": kind, "options": options, "context_only": context_only,
                          **{a: s.to_json() for a, s in result.scores.items()}}  # fmt: skip
        pictures[label] = result.strong_pictures
        partial.save()
        strong = result.scores["strong"]
        progress(
            f"  strong region SSIM {strong.ssim:.3f} ({strong.steps} steps), "
            f"floor {summary['floor']['strong']['ssim']:.3f}"
        )

    for label in [k for k in summary if k not in config.obfuscators and k not in ("floor", "frame_utility")]:
        summary.pop(label)  # evaluated by an earlier run of this config, dropped from it since
        pictures.pop(label, None)
    entries = {"fill": ("fill", {})}
    chosen = {**config.obfuscators, **config.utility_only}
    entries.update({label: utility_entry(label, entry) for label, entry in chosen.items()})
    measured = summary.get("frame_utility", {}).get("obfuscators", {})
    if set(measured) != set(entries):  # not measured yet, or the config's entries changed since
        progress("frame-level utility on photos of people ...")
        summary["frame_utility"] = frame_utility(entries, people_photos(config.photos), config.servers)
        partial.save()
    originals = torch.nn.functional.interpolate(to_unit(data.faces_test), size=(size, size), mode="area")
    summary["meta"] = {"config": asdict(config), "attack_resolution": size, "region": data.region,
                       "test_crops": len(data.faces_test), "test_persons": len(set(data.test_persons)),
                       "train_crops": len(data.faces_train), "natural_crops": len(data.natural)}  # fmt: skip
    region_report.write(out, summary, config)
    region_report.image_grid(out, originals, pictures, data.test_persons)
    return summary


def _resolved(kind: str, options: dict, model: nanodet.NanoDet) -> dict:
    if kind == "pca" and "basis" not in options:
        from privinfer.obfuscate.pca_fitting import default_basis

        return {"basis": default_basis(model, 256, options.get("k", 16))}
    return dict(options)


def partial_key(config: RegionEvaluationConfig) -> str:
    """What must be equal for two runs' finished obfuscators to be comparable."""
    return json.dumps({**asdict(config), "obfuscators": None, "out_dir": None}, sort_keys=True, default=str)


class _Partial(PartialResults):
    """`PartialResults` keyed by the run's config without its obfuscators and its folder: an
    obfuscator added to the config later is run on top of the finished ones, one whose options
    changed is run again, and a finished part can be copied to another folder. It also keeps the
    unaltered patches' strong attacker, which the inversion attack decodes with."""

    def __init__(self, out: Path, config: RegionEvaluationConfig) -> None:
        super().__init__(out, partial_key(config))
        self.attacker_path = out / "unaltered_attacker.partial.pt"
        self.summary.pop("frame_utility", None)  # measured again over the current obfuscators

    def keep_unaltered_attacker(self, trained: TrainedAttacker) -> None:
        """The unaltered patches' strong attacker, which later obfuscators' inversion attack decodes with."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"state": trained.attacker.state_dict(), "steps": trained.steps, "best_step": trained.best_step,
                    "validation_loss": trained.validation_loss}, self.attacker_path)  # fmt: skip

    def unaltered_attacker(self, settings: RegionAttackTraining) -> TrainedAttacker | None:
        if "unaltered" not in self.summary or not self.attacker_path.is_file():
            self.summary.pop("unaltered", None)  # without its attacker, it is run again
            return None
        saved = torch.load(self.attacker_path, weights_only=True)
        attacker = RegionAttacker(saved["state"]["mean"].shape[1], settings.stages, settings.width)
        attacker.load_state_dict(saved["state"])
        return TrainedAttacker(attacker.eval(), saved["steps"], saved["best_step"], saved["validation_loss"])
