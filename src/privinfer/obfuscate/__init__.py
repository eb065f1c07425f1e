"""Obfuscators, built by name: embedding-space (unaltered, gaussian, random-mask, pca, channel-mask)
and pixel-space comparisons (blur, mosaic). Add one: a module here with a class decorated by
``@register("name")``, imported below.
"""

from privinfer.obfuscate import channel_mask, feature_space, pca, pixel_space  # noqa: F401  (registers)
from privinfer.obfuscate.base import EMBEDDING, PIXELS, EmbeddingObfuscator, Obfuscator, PixelObfuscator
from privinfer.obfuscate.registry import available_obfuscators, create_obfuscator, obfuscator_space

__all__ = [
    "EMBEDDING",
    "PIXELS",
    "EmbeddingObfuscator",
    "Obfuscator",
    "PixelObfuscator",
    "available_obfuscators",
    "create_obfuscator",
    "obfuscator_space",
]
