"""Training and evaluation chunks: face crops as they are, and random crops of scene frames."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np


def random_crops(frames: Sequence[np.ndarray], size: int, count: int, seed: int) -> np.ndarray:
    """``count`` random size x size crops (uint8 RGB) from frames; small frames are upscaled first."""
    rng = np.random.default_rng(seed)
    crops = np.empty((count, size, size, 3), dtype=np.uint8)
    for i in range(count):
        frame = frames[int(rng.integers(len(frames)))]
        h, w = frame.shape[:2]
        if min(h, w) < size:
            factor = size / min(h, w)
            frame = cv2.resize(frame, (max(size, round(w * factor)), max(size, round(h * factor))))
            h, w = frame.shape[:2]
        y, x = int(rng.integers(h - size + 1)), int(rng.integers(w - size + 1))
        crops[i] = frame[y : y + size, x : x + size]
    return crops


def resized(images: np.ndarray, size: int) -> np.ndarray:
    """Area-resize a uint8 batch (N, H, W, 3) to size x size."""
    if images.shape[1] == size and images.shape[2] == size:
        return images
    return np.stack([cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA) for im in images])


def to_unit(images: np.ndarray):
    """uint8 (N, H, W, 3) RGB -> float tensor (N, 3, H, W) in [0, 1] (the decoders' target space)."""
    import torch

    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
