"""What an obfuscator is: something that turns a sensitive tile into what a server may see.

Two kinds exist. Embedding obfuscators act on z = head(tile) (the product's method and its
feature-space baselines); the server runs the model's tail on what they return. Pixel
obfuscators (blur, mosaic: what deface does) alter the sensitive boxes' pixels inside the tile;
the server then runs the full model on the altered pixels.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import torch

EMBEDDING, PIXELS = "embedding", "pixels"


class Obfuscator:
    """Base of both kinds; ``space`` says which one."""

    name: str = ""
    space: str = EMBEDDING
    #: draws fresh randomness per call (a white-box attacker cannot replay it)
    stochastic: bool = False
    #: what a region's pixels become when its chunk goes filled (`client.fill`), unless the
    #: pipeline names one: the fill a learned obfuscator was trained with
    preferred_fill: str = "black"
    #: takes a ``fill`` option (`client.fill`), which the pipeline's ``--fill`` sets
    takes_fill: bool = False
    #: what a server receives is a function of the chunk with its regions filled black and of where
    #: the regions are, nothing else: its privacy is the inpainting floor's by construction
    context_only: bool = False


class EmbeddingObfuscator(Obfuscator, ABC):
    space = EMBEDDING
    #: False for an obfuscator whose output does not depend on z at all (it is called with zeros of
    #: z's shape), so that the client need not run the head for it
    reads_features: bool = True

    @abstractmethod
    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) embedding -> what is sent, same shape (the tail must accept it)."""

    def undo(self, sent: torch.Tensor) -> torch.Tensor:
        """The best estimate of z that someone holding this obfuscator's code and weights (anyone:
        they ship with the product) gets from what was sent: whatever the obfuscator does invertibly,
        undone. Zeroed channels and fresh noise cannot be undone, so the default is ``sent`` itself."""
        return sent


class PixelObfuscator(Obfuscator, ABC):
    space = PIXELS
    #: True when the server repairs the regions' features from their context (the chunk goes to
    #: the `repaired` model with the regions' cells, `obfuscate.repair`)
    repaired_on_server: bool = False

    @abstractmethod
    def __call__(self, tile_rgb: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> np.ndarray:
        """Tile (H, W, 3) uint8 and sensitive pixel boxes inside it -> altered copy of the tile."""
