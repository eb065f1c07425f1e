"""What a server sees of a sensitive chunk under a given obfuscator: the attacker's input.

Embedding obfuscators: z' = obfuscator(head(chunk)) (float32 (C, h, w)). Pixel obfuscators:
the whole chunk is the sensitive region, so the server sees the blurred / pixelated chunk
((3, S, S) in [0, 1]). Attacks are adaptive: they train on exactly this, produced by the
deployed obfuscator itself.
"""

from __future__ import annotations

import numpy as np
import torch

from privinfer.attack.region import CELL, RegionView
from privinfer.client.privatize import filled, region_cells
from privinfer.models import nanodet
from privinfer.obfuscate import EmbeddingObfuscator, Obfuscator, PixelObfuscator
from privinfer.train.chunks import to_unit


@torch.inference_mode()
def observe(obfuscator: Obfuscator, model: nanodet.NanoDet, chunks: np.ndarray, batch: int = 32) -> torch.Tensor:
    """uint8 chunks (N, S, S, 3) -> what the server receives for each, stacked, float32 on CPU."""
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(chunks), batch):
        part = chunks[start : start + batch]
        if isinstance(obfuscator, PixelObfuscator):
            size = part.shape[1]
            altered = np.stack([obfuscator(c, [(0, 0, size, size)]) for c in part])
            out.append(to_unit(altered))
        elif isinstance(obfuscator, EmbeddingObfuscator):
            z = obfuscator(model.head(nanodet.normalise(list(part), device)))
            # What travels is float16 (see privatize.py): the attacker gets exactly that.
            out.append(z.to(torch.float16).float().cpu())
        else:
            raise TypeError(f"unknown obfuscator kind {type(obfuscator).__name__}")
    return torch.cat(out)


@torch.inference_mode()
def observe_region(
    obfuscator: Obfuscator, model: nanodet.NanoDet, chunks: np.ndarray, region: tuple[int, int, int, int],
    batch: int = 32,
) -> RegionView:  # fmt: skip
    """What a server receives for chunks (N, S, S, 3) uint8 whose sensitive region is ``region``.

    A pixel obfuscator sends the chunk with the region altered, and no patch. An embedding
    obfuscator sends the chunk with the region filled, plus the patch: the obfuscated stride-8
    features of the region's cells, as float16. They are computed by the head on the whole
    chunk, which for a corpus crop is what `privatize.feature_patch` computes: its crop around
    the region, with 32 px of context, clipped to the chunk, is the whole 128 px chunk.
    """
    device = next(model.parameters()).device
    row0, col0, row1, col1 = region_cells(region)
    pixels, patches = [], []
    for start in range(0, len(chunks), batch):
        part = chunks[start : start + batch]
        side = part.shape[1]
        patch = torch.zeros(len(part), nanodet.EMBEDDING_CHANNELS, side // CELL, side // CELL)
        if isinstance(obfuscator, PixelObfuscator):
            pixels.append(to_unit(np.stack([obfuscator(c, [region]) for c in part])))
        elif isinstance(obfuscator, EmbeddingObfuscator):
            pixels.append(to_unit(np.stack([filled(c, [region]) for c in part])))
            z = model.head(nanodet.normalise(list(part), device))[:, :, row0:row1, col0:col1]
            sent = obfuscator((z if obfuscator.reads_features else torch.zeros_like(z)).contiguous())
            patch[:, :, row0:row1, col0:col1] = sent.to(torch.float16).float().cpu()
        else:
            raise TypeError(f"unknown obfuscator kind {type(obfuscator).__name__}")
        patches.append(patch)
    return RegionView(torch.cat(pixels), torch.cat(patches), region)
