"""Privacy of one obfuscator: how well attackers rebuild held-out persons' face chunks.

strong: decoder trained on training persons' chunks plus natural photos (the strongest we have);
weak: decoder trained on natural photos only (another distribution);
whitebox: optimisation through the known head and obfuscator (embedding obfuscators only);
floor: a decoder fed zeros (what the data distribution alone gives an attacker).
Scores: SSIM, PSNR (peak 1.0), SIM = cosine of ImageNet-CNN features, all on the held-out persons;
with an `IdentityReference`, also identity (cosine of dlib face descriptors) and the rate at which a
face recogniser re-identifies the held-out person from the reconstruction (see metrics/identity.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F

from privinfer.attack.learned import AttackTraining, reconstruct, train_attacker
from privinfer.attack.observe import observe
from privinfer.attack.whitebox import whitebox_reconstruct
from privinfer.metrics.embedders import Embedder, semantic_similarity
from privinfer.metrics.identity import FaceDescriptors, IdentityReference
from privinfer.metrics.image_similarity import batch_mean, psnr, ssim
from privinfer.models import nanodet
from privinfer.obfuscate import EmbeddingObfuscator, Obfuscator
from privinfer.train.chunks import to_unit


@dataclass(frozen=True)
class PrivacyScores:
    ssim: float
    psnr: float
    sim: dict[str, float]
    # None when the identity metric is off (config identity = false, or a quick run without dlib's models).
    identity: float | None = None
    reid_rate: float | None = None
    reid_chance: float | None = None

    def to_json(self) -> dict:
        return {key: value for key, value in asdict(self).items() if value is not None}


@dataclass(frozen=True)
class PrivacyData:
    """uint8 chunks (N, S, S, 3): training persons' faces, natural photos, held-out persons' faces,
    and who is in each held-out chunk (from the corpus manifest; needed for re-identification)."""

    faces_train: np.ndarray
    natural: np.ndarray
    faces_test: np.ndarray
    test_persons: Sequence[str] = field(default_factory=tuple)


def score(
    rebuilt: torch.Tensor, originals: torch.Tensor, embedders: dict[str, Embedder],
    identity: IdentityReference | None = None,
) -> PrivacyScores:  # fmt: skip
    """Rebuilt vs original, both (N, 3, s, s) in [0, 1] at the attack resolution; the identity
    reference, when given, holds the descriptors of (at least) these N originals, in order."""
    a, b = rebuilt.clamp(0, 1).numpy(), originals.numpy()
    with torch.inference_mode():
        sims = {name: float(semantic_similarity(e, rebuilt, originals).mean()) for name, e in embedders.items()}
    scores = PrivacyScores(batch_mean(ssim, a, b), batch_mean(psnr, a, b), sims)
    if identity is None:
        return scores
    faces = identity.score(rebuilt)
    return replace(scores, identity=faces.identity, reid_rate=faces.reid_rate, reid_chance=faces.reid_chance)


def identity_reference(data: PrivacyData, settings: AttackTraining, describe: FaceDescriptors) -> IdentityReference:
    """The held-out originals' face descriptors at the attack resolution (what every attack is scored at).

    Raises:
        ValueError: ``data.test_persons`` does not label every held-out chunk.
    """
    if len(data.test_persons) != len(data.faces_test):
        raise ValueError(f"{len(data.test_persons)} person labels for {len(data.faces_test)} held-out face chunks")
    size = attack_resolution(data.faces_test.shape[1], settings)
    return IdentityReference.build(describe, at_resolution(to_unit(data.faces_test), size), data.test_persons)


def attack_resolution(chunk: int, settings: AttackTraining) -> int:
    return chunk * 2**settings.stages // 8


def evaluate_privacy(
    obfuscator: Obfuscator, model: nanodet.NanoDet, data: PrivacyData, embedders: dict[str, Embedder],
    settings: AttackTraining, whitebox_images: int, whitebox_steps: int, identity: IdentityReference | None = None,
) -> tuple[dict[str, PrivacyScores], dict[str, torch.Tensor]]:  # fmt: skip
    """Scores per attack, and the strong attacker's reconstructions (for the image grid).

    ``identity``: the reference from `identity_reference` for the same data, or None to skip the
    face-identity scores.
    """
    size = attack_resolution(data.faces_test.shape[1], settings)
    target_test = at_resolution(to_unit(data.faces_test), size)
    seen_faces = observe(obfuscator, model, with_flips(data.faces_train))
    seen_natural = observe(obfuscator, model, data.natural)
    seen_test = observe(obfuscator, model, data.faces_test)
    if seen_test.shape[1] == 3:  # pixel obfuscators: attack at the same resolution as the others
        seen_faces, seen_natural, seen_test = (at_resolution(t, size) for t in (seen_faces, seen_natural, seen_test))
    faces_target = at_resolution(to_unit(with_flips(data.faces_train)), size)
    natural_target = at_resolution(to_unit(data.natural), size)

    strong = train_attacker(torch.cat([seen_faces, seen_natural]), torch.cat([faces_target, natural_target]),
                            settings, f"{obfuscator.name}/strong")  # fmt: skip
    weak = train_attacker(seen_natural, natural_target, settings, f"{obfuscator.name}/weak")
    rebuilt = {"strong": reconstruct(strong, seen_test, size), "weak": reconstruct(weak, seen_test, size)}
    scores = {name: score(images, target_test, embedders, identity) for name, images in rebuilt.items()}
    if isinstance(obfuscator, EmbeddingObfuscator) and whitebox_images:
        count = min(whitebox_images, len(data.faces_test))
        optimised = whitebox_reconstruct(model, obfuscator, seen_test[:count], data.faces_test.shape[1], whitebox_steps)
        scores["whitebox"] = score(at_resolution(optimised, size), target_test[:count], embedders, identity)
    return scores, rebuilt


def evaluate_floor(
    data: PrivacyData,
    embedders: dict[str, Embedder],
    settings: AttackTraining,
    identity: IdentityReference | None = None,
) -> PrivacyScores:
    """The no-information attacker: trained on the same targets as the strong one, fed zeros."""
    size = attack_resolution(data.faces_test.shape[1], settings)
    targets = torch.cat(
        [at_resolution(to_unit(with_flips(data.faces_train)), size), at_resolution(to_unit(data.natural), size)]
    )
    zeros = torch.zeros(len(targets), 128, data.faces_test.shape[1] // 8, data.faces_test.shape[1] // 8)
    attacker = train_attacker(zeros, targets, settings, "floor")
    rebuilt = reconstruct(attacker, torch.zeros(len(data.faces_test), *zeros.shape[1:]), size)
    return score(rebuilt, at_resolution(to_unit(data.faces_test), size), embedders, identity)


def with_flips(chunks: np.ndarray) -> np.ndarray:
    """Horizontal flips double the few persons' data (augmentation against overfitting)."""
    return np.concatenate([chunks, chunks[:, :, ::-1]])


def at_resolution(images: torch.Tensor, size: int) -> torch.Tensor:
    """Images (N, 3, s, s) area-resized to the attack resolution ``size`` (unchanged when already there)."""
    return images if images.shape[-1] == size else F.interpolate(images, size=(size, size), mode="area")
