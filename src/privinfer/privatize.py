"""Turning the kept chunks into payloads: raw pixels, obfuscated pixels, or obfuscated embeddings.

This is the only place where chunk pixels are turned into what leaves the client, so it is
where the policy is enforced: a privatized chunk's pixels never become a PIXELS payload.

Pixels are sent as they are, not letterboxed: the server model pads them to multiples of 32, so
the bytes on the wire are the chunk's own. An embedding is computed on the chunk padded the same
way, so that the server's tail sees exactly what its full model would.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from privinfer.client_head import ClientHead
from privinfer.errors import PrivinferError
from privinfer.models.nanodet import pad_pixels, padded_side
from privinfer.obfuscate import EmbeddingObfuscator, Obfuscator, PixelObfuscator
from privinfer.serve import EMBEDDING, OBFUSCATED_PIXELS, PIXELS, Payload
from privinfer.tiling import pixel_extent
from privinfer.types import Box, Chunk, Treatment


@dataclass(frozen=True)
class PreparedChunk:
    """A chunk ready to send, and the (height, width) of the model input its raw outputs are for."""

    chunk: Chunk
    payload: Payload

    @property
    def input_shape(self) -> tuple[int, int]:
        return padded_side(self.chunk.box.height), padded_side(self.chunk.box.width)


def boxes_inside(tile: Box, boxes: list[Box]) -> list[tuple[int, int, int, int]]:
    """Sensitive boxes as integer pixel ranges in the chunk's own coordinates (clipped, non-empty)."""
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


def prepare_chunks(
    frame: np.ndarray, chunks: list[Chunk], sensitive: list[Box], obfuscator: Obfuscator, head: ClientHead
) -> list[PreparedChunk]:
    """Payloads for every non-discarded chunk, in chunk order. ``head`` embeds the sensitive chunks
    for an embedding-space obfuscator (chunks of one size in one batch)."""
    prepared: list[PreparedChunk] = []
    to_embed: dict[tuple[int, int], list[tuple[Chunk, np.ndarray]]] = {}
    for chunk in chunks:
        if chunk.treatment == Treatment.DISCARDED:
            continue
        pixels = np.ascontiguousarray(crop(frame, chunk.box))
        if chunk.treatment == Treatment.RAW:
            prepared.append(PreparedChunk(chunk, Payload(chunk.index, PIXELS, pixels)))
        elif isinstance(obfuscator, PixelObfuscator):
            altered = obfuscator(pixels, boxes_inside(chunk.box, sensitive))
            prepared.append(PreparedChunk(chunk, Payload(chunk.index, OBFUSCATED_PIXELS, altered)))
        elif isinstance(obfuscator, EmbeddingObfuscator):
            canvas = pad_pixels(pixels)
            to_embed.setdefault(canvas.shape[:2], []).append((chunk, canvas))
        else:
            raise PrivinferError(f"obfuscator '{obfuscator.name}' is neither pixel- nor embedding-space")
    for group in to_embed.values():
        with torch.inference_mode():
            z = obfuscator(head([canvas for _, canvas in group]))
        # float16 halves the bytes on the wire; the tail's outputs move by ~1e-3 (see tests).
        sent = z.to(torch.float16).cpu().numpy()
        for (chunk, _), embedding in zip(group, sent, strict=True):
            prepared.append(PreparedChunk(chunk, Payload(chunk.index, EMBEDDING, embedding)))
    return sorted(prepared, key=lambda p: p.chunk.index)
