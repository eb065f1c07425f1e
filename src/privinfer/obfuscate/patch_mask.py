"""The learned obfuscator for feature patches: a hard per-channel gate generated from the patch itself.

The mask-generation network (`channel_mask.MaskGenerator`: the patch pooled to one value per
channel, a small MLP) reads the stride-8 features of a sensitive region's cells and outputs one
value per channel. Deployed, each value is a hard gate: a channel is sent or it is exactly zero.
Nothing is rescaled, so there is nothing an attacker who holds these weights can divide out.

Two ways to send a kept channel (``pool``):

- ``pool=False``: its map over the region's cells, as the head computed it;
- ``pool=True``: its spatial mean over the region, written into every cell. The server then
  learns one number per kept channel about the region, none about where in the region anything
  is; the attack evaluation measures what that leaves an attacker.

Training (`privinfer.train.patch_mask_training`) uses straight-through gates: the forward pass is
the deployed hard gate, the gradient is the sigmoid's. Weights trained for one ``pool`` setting
record it, and loading them with the other is refused.
"""

from __future__ import annotations

from pathlib import Path

import torch

from privinfer.errors import ConfigError
from privinfer.obfuscate.base import EmbeddingObfuscator
from privinfer.obfuscate.channel_mask import MaskGenerator
from privinfer.obfuscate.registry import register

WEIGHTS_DIR = Path(__file__).parent / "weights"
SHIPPED = {False: WEIGHTS_DIR / "patch_mask.pt", True: WEIGHTS_DIR / "patch_mask_pooled.pt"}


def straight_through_gate(logits: torch.Tensor) -> torch.Tensor:
    """1 where sigmoid(logits) >= 0.5, else 0, in the forward pass; the sigmoid's gradient backwards."""
    soft = torch.sigmoid(logits)
    return (soft >= 0.5).to(soft.dtype) + soft - soft.detach()


def pooled(z: torch.Tensor) -> torch.Tensor:
    """Each channel's spatial mean over the patch, in every cell of it."""
    return z.mean(dim=(2, 3), keepdim=True).expand_as(z)


@register("patch-mask")
class PatchMask(EmbeddingObfuscator):
    """z_region -> gate(M(z_region)) * z_region (or * its per-channel mean with ``pool``).

    ``weights``: a file written by `privinfer train --target patch`, ``"untrained"`` for the seeded
    initialisation (keeps every channel: a control, not private), or None for the shipped file of
    the chosen ``pool`` setting.
    """

    def __init__(
        self,
        weights: str | Path | None = None,
        pool: bool = False,
        hidden: int = 64,
        channels: int = 128,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ) -> None:
        self.pool = bool(pool)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.generator = MaskGenerator(channels, hidden)
        if weights is None:
            weights = SHIPPED[self.pool]
            if not Path(weights).is_file():
                raise ConfigError(f"patch-mask: the shipped weights {weights} are missing; train them with "
                                  f"privinfer train --target patch{' --pool' if self.pool else ''}")  # fmt: skip
        self.trained = weights != "untrained"
        if self.trained:
            path = Path(weights)
            if not path.is_file():
                raise ConfigError(f"patch-mask weights file {path} does not exist")
            state = torch.load(path, map_location="cpu", weights_only=True)
            if bool(state.get("pool", False)) != self.pool:
                raise ConfigError(f"patch-mask weights {path} were trained with pool={state.get('pool')}, "
                                  f"not pool={self.pool}")  # fmt: skip
            self.generator.load_state_dict(state["mask_generator"])
        self.generator.to(device).eval()

    def gate_logits(self, z: torch.Tensor) -> torch.Tensor:
        """(N, C) logits; a channel is sent where its logit is >= 0."""
        return self.generator.net(z.mean(dim=(2, 3)))

    def gated(self, z: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        """What is sent for features ``z`` under a (N, C) gate of zeros and ones."""
        values = pooled(z) if self.pool else z
        return values * gate[:, :, None, None]

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        gate = (self.gate_logits(z) >= 0).to(z.dtype)
        return self.gated(z, gate)
