"""The utility loss of a feature patch: what the server's `patched` graph makes of a chunk whose
faces are filled and whose faces' cells hold what the client sent, distilled towards what the tail
makes of the clean chunk. The graph is `nanodet.PatchedPixelsToRaw`, written here in torch so that
gradients reach whatever computed the patch."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from privinfer.client.privatize import filled, region_cells
from privinfer.models import nanodet
from privinfer.models.nanodet import padded_side
from privinfer.train.distill import distillation_loss
from privinfer.train.region_chunks import SceneChunk

# block of clean features of one region (1, C, rows, cols) -> what is sent for it, same shape
Send = Callable[[torch.Tensor], torch.Tensor]


def padded_batch(chunks: list[SceneChunk]) -> np.ndarray:
    """Chunks padded with black at the bottom and right to one square side, a multiple of 32 (what
    the server computes)."""
    side = padded_side(max(max(c.pixels.shape[:2]) for c in chunks))
    out = np.zeros((len(chunks), side, side, 3), dtype=np.uint8)
    for i, chunk in enumerate(chunks):
        h, w = chunk.pixels.shape[:2]
        out[i, :h, :w] = chunk.pixels
    return out


def patched_features(z_filled: torch.Tensor, z_clean: torch.Tensor, chunks: list[SceneChunk], send: Send):
    """The server's embedding: the filled chunk's, each region's cells replaced by what was sent for
    them (the first region wins a shared cell, as in `privatize.feature_patch`)."""
    mixed = z_filled.clone()
    written = torch.zeros(z_filled.shape[0], *z_filled.shape[2:], dtype=torch.bool)
    for i, chunk in enumerate(chunks):
        for region in chunk.regions:
            row0, col0, row1, col1 = region_cells(region)
            sent = send(z_clean[i : i + 1, :, row0:row1, col0:col1])
            fresh = ~written[i, row0:row1, col0:col1]
            mixed[i, :, row0:row1, col0:col1] = torch.where(fresh, sent[0], mixed[i, :, row0:row1, col0:col1])
            written[i, row0:row1, col0:col1] = True
    return mixed


def patched_utility(
    model: nanodet.NanoDet, chunks: list[SceneChunk], send: Send, device, fill: str = "black"
) -> torch.Tensor:
    """Distillation of the tail on the filled-and-patched chunks towards the tail on the clean ones;
    regions filled with ``fill`` (`client.fill`)."""
    raw = padded_batch(chunks)
    holes = np.stack([filled(pixels, list(chunk.regions), fill) for pixels, chunk in zip(raw, chunks, strict=True)])
    with torch.no_grad():
        z_clean = model.head(nanodet.normalise(list(raw), device))
        teacher = model.tail(z_clean)
        z_filled = model.head(nanodet.normalise(list(holes), device))
    return distillation_loss(model.tail(patched_features(z_filled, z_clean, chunks, send)), teacher)


def mixed_utility(model: nanodet.NanoDet, scenes: list[SceneChunk], faces: np.ndarray, region, send: Send,
                  rng: np.random.Generator, scene_batch: int, crop_batch: int, device,
                  fill: str = "black") -> torch.Tensor:  # fmt: skip
    """`patched_utility` on a random batch of scene windows (small faces, whole bodies) and one of
    face crops whose face is ``region`` (large faces), averaged."""
    picked = [scenes[i] for i in rng.integers(len(scenes), size=scene_batch)]
    crops = [SceneChunk(faces[i], (region,)) for i in rng.integers(len(faces), size=crop_batch)]
    return (patched_utility(model, picked, send, device, fill) + patched_utility(model, crops, send, device, fill)) / 2
