"""Privacy of a sensitive region: how well attackers rebuild held-out persons' faces from what a
server sees of their chunk (the filled pixels around the face plus the obfuscated feature patch).

Attacks, all on held-out persons (`attack.region` for the attacker and its input):

- ``strong``: trained on what the obfuscator sends for training persons' faces and natural photos;
- ``weak``: trained on natural photos only (another distribution);
- ``inversion``: the known-obfuscator attack. The obfuscator's weights ship with the product, so
  an attacker undoes whatever it does invertibly (`EmbeddingObfuscator.undo`; the hard gates and
  noise here have nothing to undo) and decodes with the attacker trained on *unaltered* patches;
- ``whitebox``: optimisation of the region's pixels, context given, so that the obfuscated head
  features match what was sent (embedding obfuscators, a few faces);
- the ``floor``: the inpainting attacker, the same network given the filled chunk and no patch.

Scores on the region: SSIM and PSNR of the region's pixels, SIM (ImageNet-CNN cosine) of the region;
on the attacker's whole picture (context as sent, the rebuild inside): dlib identity, verification
(distance < 0.6 to the person's own original, against the rate for two different persons) and
top-1 re-identification among the held-out persons (balanced over persons).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from privinfer.attack.observe import observe_region
from privinfer.attack.region import (
    RegionAttackTraining,
    RegionView,
    TrainedAttacker,
    rebuild,
    region_mask,
    train_region_attacker,
)
from privinfer.attack.whitebox import total_variation, unit_to_model_input
from privinfer.client.privatize import region_cells
from privinfer.metrics.embedders import Embedder, semantic_similarity
from privinfer.metrics.identity import IdentityReference
from privinfer.metrics.image_similarity import batch_mean, psnr, ssim
from privinfer.models import nanodet
from privinfer.obfuscate import EmbeddingObfuscator, Obfuscator
from privinfer.train.chunks import to_unit


@dataclass(frozen=True)
class RegionData:
    """uint8 chunks (N, S, S, 3) and the region (the face box) they share."""

    faces_train: np.ndarray
    natural: np.ndarray
    faces_test: np.ndarray
    test_persons: tuple[str, ...]
    region: tuple[int, int, int, int]


@dataclass(frozen=True)
class RegionScores:
    ssim: float
    psnr: float
    sim: dict[str, float]
    identity: float | None = None
    verified: float | None = None
    verified_chance: float | None = None
    reid_rate: float | None = None
    reid_chance: float | None = None
    steps: int | None = None  # attacker training steps (early stopping), when trained
    images: int | None = None

    def to_json(self) -> dict:
        return {key: value for key, value in asdict(self).items() if value is not None}


def region_pixels(images: torch.Tensor, region: tuple[int, int, int, int], chunk: int) -> torch.Tensor:
    """The region's pixels of (N, 3, s, s) pictures of ``chunk`` px chunks."""
    mask = region_mask(region, chunk, images.shape[-1])[0, 0]
    rows, cols = mask.any(dim=1).nonzero(), mask.any(dim=0).nonzero()
    return images[..., int(rows[0]) : int(rows[-1]) + 1, int(cols[0]) : int(cols[-1]) + 1]


def score_region(
    pictures: torch.Tensor, originals: torch.Tensor, region, chunk: int, embedders: dict[str, Embedder],
    identity: IdentityReference | None, trained: TrainedAttacker | None = None,
) -> RegionScores:  # fmt: skip
    """Attacker pictures vs originals (N, 3, s, s) in [0, 1] at the attack resolution."""
    a = region_pixels(pictures.clamp(0, 1), region, chunk)
    b = region_pixels(originals, region, chunk)
    with torch.inference_mode():
        sims = {name: float(semantic_similarity(e, a, b).mean()) for name, e in embedders.items()}
    a_np, b_np = a.numpy(), b.numpy()
    scores = {"ssim": batch_mean(ssim, a_np, b_np), "psnr": batch_mean(psnr, a_np, b_np), "sim": sims,
              "images": len(pictures)}  # fmt: skip
    if trained is not None:
        scores["steps"] = trained.steps
    if identity is not None:
        faces = identity.score(pictures)
        scores.update(identity=faces.identity, verified=faces.verified, verified_chance=faces.verified_chance,
                      reid_rate=faces.reid_rate, reid_chance=faces.reid_chance)  # fmt: skip
    return RegionScores(**scores)


def _views(
    obfuscator: Obfuscator, model: nanodet.NanoDet, data: RegionData
) -> tuple[RegionView, RegionView, RegionView]:
    train_faces = np.concatenate([data.faces_train, data.faces_train[:, :, ::-1]])  # flips: more of few persons
    faces = observe_region(obfuscator, model, np.ascontiguousarray(train_faces), data.region)
    natural = observe_region(obfuscator, model, data.natural, data.region)
    test = observe_region(obfuscator, model, data.faces_test, data.region)
    return faces, natural, test


def _join(a: RegionView, b: RegionView) -> RegionView:
    return RegionView(torch.cat([a.pixels, b.pixels]), torch.cat([a.patch, b.patch]), a.region)


@dataclass
class RegionAttackResult:
    scores: dict[str, RegionScores]
    strong_pictures: torch.Tensor
    strong: TrainedAttacker


def attack_region(
    obfuscator: Obfuscator, model: nanodet.NanoDet, data: RegionData, embedders: dict[str, Embedder],
    settings: RegionAttackTraining, identity: IdentityReference | None, unaltered: TrainedAttacker | None,
    whitebox_images: int, whitebox_steps: int, progress: Callable[[str], None] = lambda _: None,
    weak: bool = True,
) -> RegionAttackResult:  # fmt: skip
    """Every attack on one obfuscator. ``unaltered``: the strong attacker trained on unaltered
    patches (for the inversion attack), None while evaluating ``unaltered`` itself."""
    chunk = data.faces_test.shape[1]
    faces, natural, test = _views(obfuscator, model, data)
    train_targets = to_unit(np.ascontiguousarray(np.concatenate([data.faces_train, data.faces_train[:, :, ::-1]])))
    natural_targets = to_unit(data.natural)
    label = obfuscator.name
    strong = train_region_attacker(_join(faces, natural), torch.cat([train_targets, natural_targets]), settings,
                                   f"{label}/strong", progress)  # fmt: skip
    size = test.patch.shape[-1] * 2**settings.stages
    originals = F.interpolate(to_unit(data.faces_test), size=(size, size), mode="area")
    pictures = {"strong": (rebuild(strong.attacker, test), strong)}
    if weak:
        trained_weak = train_region_attacker(natural, natural_targets, settings, f"{label}/weak", progress)
        pictures["weak"] = (rebuild(trained_weak.attacker, test), trained_weak)
    if isinstance(obfuscator, EmbeddingObfuscator) and unaltered is not None:
        undone = RegionView(test.pixels, obfuscator.undo(test.patch), test.region)
        pictures["inversion"] = (rebuild(unaltered.attacker, undone), None)
    scores = {name: score_region(p, originals, data.region, chunk, embedders, identity, t)
              for name, (p, t) in pictures.items()}  # fmt: skip
    if isinstance(obfuscator, EmbeddingObfuscator) and whitebox_images:
        count = min(whitebox_images, len(data.faces_test))
        optimised = whitebox_region(model, obfuscator, test.subset(slice(0, count)), whitebox_steps)
        small = F.interpolate(optimised, size=(size, size), mode="area")
        scores["whitebox"] = score_region(small, originals[:count], data.region, chunk, embedders, identity)
    return RegionAttackResult(scores, pictures["strong"][0], strong)


def attack_floor(
    model: nanodet.NanoDet, data: RegionData, embedders: dict[str, Embedder], settings: RegionAttackTraining,
    identity: IdentityReference | None, progress: Callable[[str], None] = lambda _: None,
) -> RegionAttackResult:  # fmt: skip
    """The inpainting floor: the strong attacker's training, on views that carry no patch (``fill``)."""
    from privinfer.obfuscate import create_obfuscator

    return attack_region(create_obfuscator("fill"), model, data, embedders, settings, identity, None, 0, 0,
                         progress, weak=False)  # fmt: skip


def whitebox_region(
    model: nanodet.NanoDet, obfuscator: EmbeddingObfuscator, view: RegionView, steps: int,
    tv_weight: float = 0.05, lr: float = 0.05, seed: int = 0,
) -> torch.Tensor:  # fmt: skip
    """Optimise the region's pixels (the context is what was sent) so that the obfuscated features of
    the region's cells match the patch; (N, 3, S, S) in [0, 1]. A stochastic obfuscator cannot be
    replayed: the head's features are matched on the channels that arrived non-zero."""
    region = view.region
    row0, col0, row1, col1 = region_cells(region)
    target = view.patch[:, :, row0:row1, col0:col1]
    kept = (target.abs().sum(dim=(2, 3)) > 0).float()[:, :, None, None]
    context = view.pixels
    inside = region_mask(region, context.shape[-1], context.shape[-1])
    generator = torch.Generator().manual_seed(seed)
    logits = (torch.randn(context.shape, generator=generator) * 0.1).requires_grad_(True)
    optimiser = torch.optim.Adam([logits], lr)
    for _ in range(steps):
        x = context * (1 - inside) + torch.sigmoid(logits) * inside
        z = model.head(unit_to_model_input(x))[:, :, row0:row1, col0:col1]
        sent = z * kept if obfuscator.stochastic else obfuscator(z)
        loss = (sent - target).pow(2).mean() + tv_weight * total_variation(x)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        return context * (1 - inside) + torch.sigmoid(logits) * inside
