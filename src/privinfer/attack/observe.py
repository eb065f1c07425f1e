"""What a server sees of a sensitive chunk under a given obfuscator: the attacker's input.

Embedding obfuscators: z' = obfuscator(head(chunk)) (float32 (C, h, w)). Pixel obfuscators:
the whole chunk is the sensitive region, so the server sees the blurred / pixelated chunk
((3, S, S) in [0, 1]). Attacks are adaptive: they train on exactly this, produced by the
deployed obfuscator itself.
"""

from __future__ import annotations

import numpy as np
import torch

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
