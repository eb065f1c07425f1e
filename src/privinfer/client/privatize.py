"""Turning the kept chunks into payloads: raw pixels, or pixels with the sensitive regions privatized.

This is the only place where chunk pixels are turned into what leaves the client, so it is
where the policy is enforced: a sensitive pixel never leaves as itself.

A chunk that holds sensitive regions leaves in one of two ways, by the obfuscator's kind:

- a pixel obfuscator (``fill``, ``blur``, ``mosaic``) alters the regions' pixels and the chunk
  goes as obfuscated pixels; ``repair`` sends them filled with the indices of the regions' cells,
  which the server's `repaired` model rewrites from their context (no feature value is sent);
- an embedding obfuscator privatizes the *region*, not the chunk: the chunk's pixels go with every
  region filled (`client.fill`: black, what the learned ones were trained on, or an inpainting
  from its surroundings), and each region's stride-8 features go as a *feature patch*. The client
  runs the model's head on a crop around the region (``patch_context`` pixels of context, on the
  chunk's cell grid), keeps the cells that cover the region, obfuscates them and sends them with
  their cell positions; the server runs its head on the filled pixels, writes the patch into
  those cells, and runs the tail (``nanodet.PatchedPixelsToRaw``). Bodies, background and every
  object beside a face go as pixels, as the model sees them unprotected.

Pixels are sent as they are, not letterboxed: the server model pads them to multiples of 32, so
the bytes on the wire are the chunk's own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from privinfer.client.fill import DEFAULT_FILL, fill_regions
from privinfer.client.head import ClientHead
from privinfer.client.tiling import pixel_extent
from privinfer.errors import PrivinferError
from privinfer.models.nanodet import EMBEDDING_CHANNELS, pad_pixels, padded_side
from privinfer.obfuscate import EmbeddingObfuscator, Obfuscator, PixelObfuscator
from privinfer.serve import OBFUSCATED_PIXELS, PATCHED, PIXELS, REPAIRED, FeaturePatch, Payload
from privinfer.types import Box, Chunk, Treatment

CELL = 8  # pixels per embedding cell at the default cut (stride 8)
PATCH_CONTEXT = 32  # pixels of real context around a region in the crop its features come from


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


def region_cells(region: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """The cells (row0, col0, row1, col1; ends exclusive) that any pixel of ``region`` falls in."""
    x1, y1, x2, y2 = region
    return y1 // CELL, x1 // CELL, math.ceil(y2 / CELL), math.ceil(x2 / CELL)


def cell_boxes(cells: np.ndarray, chunk: Box) -> list[Box]:
    """Where ``cells`` (flat indices into the chunk's cell grid, as a `FeaturePatch` holds them) lie
    in the frame the chunk was cut from, clipped to the chunk: the inverse of `feature_patch`'s
    numbering, for drawing what was sent."""
    columns = padded_side(int(chunk.width)) // CELL
    boxes = []
    for cell in np.asarray(cells).tolist():
        row, column = divmod(int(cell), columns)
        x1, y1 = chunk.x1 + column * CELL, chunk.y1 + row * CELL
        boxes.append(Box(x1, y1, min(x1 + CELL, chunk.x2), min(y1 + CELL, chunk.y2)))
    return boxes


def region_cell_indices(height: int, width: int, regions: list[tuple[int, int, int, int]]) -> np.ndarray:
    """(K,) int32 flat indices (row * cells per row + column) of every cell any region's pixel falls
    in, on the grid of a ``height`` x ``width`` chunk padded to multiples of 32; sorted, each once."""
    columns = padded_side(width) // CELL
    found: set[int] = set()
    for region in regions:
        row0, col0, row1, col1 = region_cells(region)
        found.update(r * columns + c for r in range(row0, row1) for c in range(col0, col1))
    return np.array(sorted(found), dtype=np.int32)


def feature_patch(
    pixels: np.ndarray,
    regions: list[tuple[int, int, int, int]],
    obfuscator: EmbeddingObfuscator,
    head: ClientHead,
    context: int = PATCH_CONTEXT,
) -> FeaturePatch:
    """The obfuscated features of every cell covering ``regions`` (chunk pixel ranges) of the chunk
    ``pixels``, each computed on a crop of the chunk around its region. A cell two regions share is
    sent once, from the first region's crop. Channels that are zero in every cell (what a hard mask
    removed) are not sent: the server writes zeros there."""
    height, width = pixels.shape[:2]
    columns = padded_side(width) // CELL
    chosen: dict[int, np.ndarray] = {}
    for region in regions:
        row0, col0, row1, col1 = region_cells(region)
        # The crop starts on a cell edge, so that its cells are the chunk's cells.
        top, left = max(0, (row0 * CELL - context) // CELL * CELL), max(0, (col0 * CELL - context) // CELL * CELL)
        bottom, right = min(height, row1 * CELL + context), min(width, col1 * CELL + context)
        with torch.inference_mode():
            if obfuscator.reads_features:
                z = head([pad_pixels(np.ascontiguousarray(pixels[top:bottom, left:right]))])
                block = z[:, :, row0 - top // CELL : row1 - top // CELL, col0 - left // CELL : col1 - left // CELL]
            else:  # nothing of the region is read: no head to run
                block = torch.zeros(1, EMBEDDING_CHANNELS, row1 - row0, col1 - col0)
            sent = obfuscator(block)[0].to(torch.float16).cpu().numpy()  # (C, rows, cols)
        for r in range(row1 - row0):
            for c in range(col1 - col0):
                chosen.setdefault((row0 + r) * columns + col0 + c, sent[:, r, c])
    cells = np.fromiter(chosen, dtype=np.int32, count=len(chosen))
    values = np.stack(list(chosen.values())).astype(np.float16)  # (K, C)
    sent = np.flatnonzero((values != 0).any(axis=0)).astype(np.int32)
    return FeaturePatch(cells, sent, np.ascontiguousarray(values[:, sent]))


def filled(pixels: np.ndarray, regions: list[tuple[int, int, int, int]], fill: str = "black") -> np.ndarray:
    """A copy of the chunk with every region replaced by ``fill`` (`client.fill`: black, or an
    inpainting from the surroundings that reads no pixel of any region)."""
    return fill_regions(pixels, regions, fill)


def prepare_chunks(
    frame: np.ndarray,
    chunks: list[Chunk],
    sensitive: list[Box],
    obfuscator: Obfuscator,
    head: ClientHead,
    fill: str = DEFAULT_FILL,
) -> list[PreparedChunk]:
    """Payloads for every non-discarded chunk, in chunk order. ``head`` computes the feature
    patches of an embedding-space obfuscator; ``fill`` names what a region's pixels become when
    they are filled (`client.fill`)."""
    prepared: list[PreparedChunk] = []
    for chunk in chunks:
        if chunk.treatment == Treatment.DISCARDED:
            continue
        pixels = np.ascontiguousarray(crop(frame, chunk.box))
        regions = boxes_inside(chunk.box, sensitive)
        if chunk.treatment == Treatment.RAW:
            payload = Payload(chunk.index, PIXELS, pixels)
        elif isinstance(obfuscator, PixelObfuscator) and obfuscator.repaired_on_server:
            cells = region_cell_indices(pixels.shape[0], pixels.shape[1], regions)
            payload = Payload(chunk.index, REPAIRED, obfuscator(pixels, regions), cells=cells)
        elif isinstance(obfuscator, PixelObfuscator):
            payload = Payload(chunk.index, OBFUSCATED_PIXELS, obfuscator(pixels, regions))
        elif isinstance(obfuscator, EmbeddingObfuscator):
            patch = feature_patch(pixels, regions, obfuscator, head)
            payload = Payload(chunk.index, PATCHED, filled(pixels, regions, fill), patch)
        else:
            raise PrivinferError(f"obfuscator '{obfuscator.name}' is neither pixel- nor embedding-space")
        prepared.append(PreparedChunk(chunk, payload))
    return prepared
