"""`token`: a learned stand-in for a sensitive region's features that reads nothing of the region.

Fill leaves the tail looking at the features of a black box where a head was, and it loses the
person around it (frame mAP 0.71 of the unprotected frame's on photos of people, against 0.96 with
the unaltered patch). A patch of the region's own features restores that, but a handful of channels
already lets an attacker rebuild the face. `token` sends, in the region's cells, a learned template
(a small grid of feature vectors, resized to the region's cells) that was fitted so the tail still
sees "a head is here": it is a function of the region's size alone, which the filled pixels show
anyway, so a server learns nothing from it that fill does not tell it. Its privacy is fill's by
construction; the evaluation measures it like every other obfuscator.

The template is trained by `privinfer train --target token` (utility only: there is nothing for an
adversary to invert) and ships in ``weights/token.pt``.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from privinfer.errors import ConfigError
from privinfer.obfuscate.base import EmbeddingObfuscator
from privinfer.obfuscate.registry import register

SHIPPED = Path(__file__).parent / "weights" / "token.pt"
TEMPLATE_CELLS = 4  # the template's rows and columns before it is resized to a region's cells


def resized_template(template: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """(C, t, t) template -> (1, C, rows, cols), bilinear (differentiable, for training)."""
    return F.interpolate(template[None], size=(rows, cols), mode="bilinear", align_corners=False)


@register("token")
class Token(EmbeddingObfuscator):
    """The region's features replaced by the learned template; the features themselves are never read."""

    reads_features = False
    context_only = True

    def __init__(self, weights: str | Path | None = None, channels: int = 128) -> None:
        path = Path(weights) if weights is not None else SHIPPED
        if weights == "untrained":
            self.template = torch.zeros(channels, TEMPLATE_CELLS, TEMPLATE_CELLS)
            self.trained = False
            return
        if not path.is_file():
            raise ConfigError(f"token: weights file {path} does not exist (train it: privinfer train --target token)")
        saved = torch.load(path, map_location="cpu", weights_only=True)
        self.template = saved["template"].float()
        self.preferred_fill = saved.get("fill", "black")  # the fill it was fitted on
        self.trained = True

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        rows, cols = z.shape[-2:]
        token = resized_template(self.template.to(z.device, z.dtype), rows, cols)
        return token.expand(z.shape[0], -1, -1, -1).contiguous()
