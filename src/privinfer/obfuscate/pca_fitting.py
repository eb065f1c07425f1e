"""Fitting the PCA baseline's basis on embeddings of the sample scene photos, cached on disk."""

from __future__ import annotations

from pathlib import Path

import torch

from privinfer import assets
from privinfer.images import read_image
from privinfer.models import nanodet
from privinfer.models.letterbox import letterbox
from privinfer.obfuscate.pca import fit_pca, save_basis

SAMPLE_SCENES = ("dog.jpg", "person.jpg", "horses.jpg")


def default_basis(model: nanodet.NanoDet, input_size: int, k: int) -> Path:
    """Path of a basis fitted on the sample scenes at this cut and size (fitted once, then cached)."""
    path = assets.cache_dir() / "pca" / f"nanodet-{model.cut}-{input_size}px-k{k}.pt"
    if not path.is_file():
        canvases = [letterbox(read_image(assets.require(name)).pixels, input_size)[0] for name in SAMPLE_SCENES]
        device = next(model.parameters()).device
        with torch.inference_mode():
            z = model.head(nanodet.normalise(canvases, device))
        save_basis(fit_pca(z, k), path)
    return path
