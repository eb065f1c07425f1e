"""Latency increment of an obfuscator over sending unaltered features, per chunk (median ms)."""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch

from privinfer.models import nanodet
from privinfer.obfuscate import EmbeddingObfuscator, Obfuscator


def chunk_ms(obfuscator: Obfuscator, model: nanodet.NanoDet, chunk: np.ndarray, repeats: int) -> float:
    """Median client-side ms to turn one chunk (S, S, 3) into its payload (head included for embeddings)."""
    device = next(model.parameters()).device
    times = []
    with torch.inference_mode():
        for _ in range(repeats + 2):
            started = time.perf_counter()
            if isinstance(obfuscator, EmbeddingObfuscator):
                obfuscator(model.head(nanodet.normalise(chunk, device))).to(torch.float16)
            else:
                obfuscator(chunk, [(0, 0, chunk.shape[1], chunk.shape[0])])
            times.append((time.perf_counter() - started) * 1e3)
    return statistics.median(times[2:])
