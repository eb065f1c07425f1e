"""Adversarial training of the channel-mask obfuscator, DISCO-style.

Each step: embeddings z = head(x) of face chunks (privacy) and scene chunks (utility) are
masked by M; a proxy decoder D learns to rebuild the face chunks from z * M(z); then M learns
to keep the tail's outputs unchanged (distillation) while making D's reconstruction as wrong
as possible (alpha x how far D's error stays below the no-information floor), optionally with a
budget on how many channels it keeps.
Training checkpoints every few steps and resumes from the last checkpoint.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from privinfer.attack.decoder import proxy_decoder
from privinfer.models import nanodet
from privinfer.obfuscate.channel_mask import MaskGenerator
from privinfer.plotting import save_figure
from privinfer.train.checkpoint import resume, save_checkpoint
from privinfer.train.chunks import random_crops, resized, to_unit
from privinfer.train.config import MaskTrainingConfig
from privinfer.train.distill import distillation_loss
from privinfer.train.start import start_training

CHUNK = 128


def train_channel_mask(
    config: MaskTrainingConfig, faces: np.ndarray, scenes: list[np.ndarray], device: str = "cpu"
) -> Path:
    """Train (or resume) one alpha point; returns the path of the final weights file."""
    start = start_training(config, device)
    out, rng, model = start.out, start.rng, start.model
    mask = MaskGenerator(128, config.hidden).to(device)
    decoder = proxy_decoder().to(device)
    opt_mask = torch.optim.Adam(mask.parameters(), config.lr_mask)
    opt_decoder = torch.optim.Adam(decoder.parameters(), config.lr_decoder)
    parts = {"mask": mask, "decoder": decoder, "opt_mask": opt_mask, "opt_decoder": opt_decoder}
    start = resume(out, parts)
    faces = resized(faces, CHUNK)
    scene_pool = random_crops(scenes, CHUNK, max(64, config.steps * config.scene_batch_size // 4), config.seed)
    log_path = out / "losses.csv"
    log = open(log_path, "a", newline="")
    writer = csv.writer(log)
    if start == 0:
        writer.writerow(["step", "utility", "privacy_mse", "mask_mean", "decoder_mse", "seconds"])
    began = time.perf_counter()
    bar = tqdm(range(start, config.steps), initial=start, total=config.steps, desc=f"alpha={config.alpha}")
    for step in bar:
        face_batch = faces[rng.integers(len(faces), size=config.batch_size)]
        scene_batch = scene_pool[rng.integers(len(scene_pool), size=config.scene_batch_size)]
        x = nanodet.normalise(list(np.concatenate([face_batch, scene_batch])), device)
        target = F.interpolate(to_unit(face_batch).to(device), scale_factor=0.5, mode="area")
        with torch.no_grad():
            z = model.head(x)
            teacher = model.tail(z)
        n_faces = len(face_batch)

        m = mask(z)
        sent = z * m[:, :, None, None]
        decoder_loss = F.mse_loss(decoder(sent[:n_faces].detach()), target)
        opt_decoder.zero_grad()
        decoder_loss.backward()
        opt_decoder.step()

        utility = distillation_loss(model.tail(sent), teacher)
        privacy = F.mse_loss(decoder(sent[:n_faces]), target)
        # Pushing D's error past the no-information floor (guessing the batch mean) buys no privacy,
        # only adversarial artefacts a fresh attacker would see through: reward the gap to it only.
        floor = (target - target.mean(dim=0, keepdim=True)).pow(2).mean()
        loss = utility + config.alpha * F.relu(floor - privacy) + config.budget * m.mean()
        opt_mask.zero_grad()
        loss.backward()
        opt_mask.step()
        decoder.zero_grad(set_to_none=True)

        writer.writerow([step, f"{utility.item():.5f}", f"{privacy.item():.5f}", f"{m.mean().item():.4f}",
                         f"{decoder_loss.item():.5f}", f"{time.perf_counter() - began:.1f}"])  # fmt: skip
        bar.set_postfix(util=f"{utility.item():.3f}", priv=f"{privacy.item():.3f}", mask=f"{m.mean().item():.2f}")
        if (step + 1) % config.checkpoint_every == 0 or step + 1 == config.steps:
            log.flush()
            save_checkpoint(out, step + 1, parts)
    log.close()
    weights = out / "channel_mask.pt"
    torch.save({"mask_generator": mask.state_dict(), "alpha": config.alpha, "hidden": config.hidden}, weights)
    _plot_losses(log_path, out / "losses.png")
    return weights


def _plot_losses(csv_path: Path, png_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(csv.DictReader(open(csv_path)))
    if not rows:
        return
    steps = [int(r["step"]) for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3))
    for axis, key in zip(axes, ("utility", "privacy_mse", "mask_mean"), strict=True):
        axis.plot(steps, [float(r[key]) for r in rows])
        axis.set_title(key)
        axis.set_xlabel("step")
    save_figure(fig, png_path, dpi=80)
