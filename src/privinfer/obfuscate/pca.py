"""PCA baseline: keep only the top-k principal directions of the channel vectors.

Each spatial position's C-vector of z is projected onto the k leading principal components
(fitted on embeddings of sample images, saved to a file) and back, so the server receives a
C-channel tensor it can run the tail on, with everything outside that k-dim subspace removed.
"""

from __future__ import annotations

from pathlib import Path

import torch

from privinfer.errors import ConfigError
from privinfer.obfuscate.base import EmbeddingObfuscator
from privinfer.obfuscate.registry import register


def fit_pca(embeddings: torch.Tensor, k: int) -> dict[str, torch.Tensor]:
    """Fit on (N, C, H, W) embeddings; returns {"mean": (C,), "components": (k, C)}."""
    vectors = embeddings.permute(0, 2, 3, 1).reshape(-1, embeddings.shape[1]).double()
    if k < 1 or k > vectors.shape[1]:
        raise ConfigError(f"pca k must be in [1, {vectors.shape[1]}], got {k}")
    mean = vectors.mean(dim=0)
    _, _, v = torch.linalg.svd(vectors - mean, full_matrices=False)
    return {"mean": mean.float(), "components": v[:k].float()}


@register("pca")
class PcaProjection(EmbeddingObfuscator):
    """Projects z onto a saved PCA basis (file from ``save_basis``) or a basis given directly."""

    def __init__(self, basis: str | Path | dict | None = None, k: int | None = None) -> None:
        if basis is None:
            raise ConfigError("the pca obfuscator needs a fitted basis (the pipeline fits one on sample images)")
        if not isinstance(basis, dict):
            path = Path(basis)
            if not path.is_file():
                raise ConfigError(f"pca basis file {path} does not exist")
            basis = torch.load(path, map_location="cpu", weights_only=True)
        components = basis["components"] if k is None else basis["components"][:k]
        self.mean, self.components = basis["mean"], components
        self.k = components.shape[0]

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        mean = self.mean.to(z.device)[None, :, None, None]
        basis = self.components.to(z.device)
        centred = z - mean
        coefficients = torch.einsum("kc,nchw->nkhw", basis, centred)
        return torch.einsum("kc,nkhw->nchw", basis, coefficients) + mean


def save_basis(basis: dict[str, torch.Tensor], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(basis, path)
