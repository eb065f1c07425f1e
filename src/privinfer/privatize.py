"""Turning the kept tiles into payloads: raw pixels, obfuscated pixels, or obfuscated embeddings.

This is the only place where tile pixels are turned into what leaves the client, so it is
where the policy is enforced: a privatized tile's pixels never become a PIXELS payload.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from privinfer.client_head import ClientHead
from privinfer.errors import PrivinferError
from privinfer.models.letterbox import Letterbox, letterbox
from privinfer.obfuscate import EmbeddingObfuscator, Obfuscator, PixelObfuscator
from privinfer.serve import EMBEDDING, OBFUSCATED_PIXELS, PIXELS, Payload
from privinfer.tiling import pixel_extent
from privinfer.types import Box, Tile, Treatment


@dataclass(frozen=True)
class PreparedTile:
    """A tile ready to send: its payload and the letterbox that maps its detections back."""

    tile: Tile
    payload: Payload
    transform: Letterbox


def boxes_inside(tile: Box, boxes: list[Box]) -> list[tuple[int, int, int, int]]:
    """Sensitive boxes as integer pixel ranges in the tile's own coordinates (clipped, non-empty)."""
    tx1, ty1, tx2, ty2 = (int(v) for v in tile.as_list())
    out = []
    for box in boxes:
        x1, y1, x2, y2 = pixel_extent(box)
        x1, y1, x2, y2 = max(x1, tx1), max(y1, ty1), min(x2, tx2), min(y2, ty2)
        if x2 > x1 and y2 > y1:
            out.append((x1 - tx1, y1 - ty1, x2 - tx1, y2 - ty1))
    return out


def crop(frame: np.ndarray, box: Box) -> np.ndarray:
    x1, y1, x2, y2 = (int(v) for v in box.as_list())
    return frame[y1:y2, x1:x2]


def prepare_tiles(
    frame: np.ndarray,
    tiles: list[Tile],
    sensitive: list[Box],
    obfuscator: Obfuscator,
    head: ClientHead,
    input_size: int,
) -> list[PreparedTile]:
    """Payloads for every non-discarded tile, in tile order. ``head`` embeds the sensitive tiles
    for an embedding-space obfuscator (all of a frame's in one batch)."""
    prepared: list[PreparedTile] = []
    to_embed: list[tuple[Tile, np.ndarray, Letterbox]] = []
    for tile in tiles:
        if tile.treatment == Treatment.DISCARDED:
            continue
        pixels = crop(frame, tile.box)
        if tile.treatment == Treatment.RAW:
            canvas, transform = letterbox(pixels, input_size)
            prepared.append(PreparedTile(tile, Payload(tile.index, PIXELS, canvas), transform))
        elif isinstance(obfuscator, PixelObfuscator):
            altered = obfuscator(pixels, boxes_inside(tile.box, sensitive))
            canvas, transform = letterbox(altered, input_size)
            prepared.append(PreparedTile(tile, Payload(tile.index, OBFUSCATED_PIXELS, canvas), transform))
        elif isinstance(obfuscator, EmbeddingObfuscator):
            canvas, transform = letterbox(pixels, input_size)
            to_embed.append((tile, canvas, transform))
        else:
            raise PrivinferError(f"obfuscator '{obfuscator.name}' is neither pixel- nor embedding-space")
    if to_embed:
        with torch.inference_mode():
            z = obfuscator(head([c for _, c, _ in to_embed]))
        # float16 halves the bytes on the wire; the tail's outputs move by ~1e-3 (see tests).
        sent = z.to(torch.float16).cpu().numpy()
        for (tile, _, transform), embedding in zip(to_embed, sent, strict=True):
            prepared.append(PreparedTile(tile, Payload(tile.index, EMBEDDING, embedding), transform))
    return sorted(prepared, key=lambda p: p.tile.index)
