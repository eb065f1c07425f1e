"""Training data for region privacy: chunks that hold a face, with the face's pixel box.

Two kinds, as the product meets them:

- *face crops* of the corpus (128 px, the face box is the crop's central 1/1.3): what the privacy
  adversary is trained on, as it is in the evaluation;
- *scene chunks*: a window of a whole scene frame at the pipeline's working size around each face
  the default face detector finds there, so that the patch is judged by what the tail makes of the
  whole person around it (utility).

Scene frames of the held-out persons' videos are left out: the evaluation's persons are never
seen in training, not even by the utility loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from privinfer.client.tiling import pixel_extent
from privinfer.data.corpus import CorpusSplit
from privinfer.metrics.identity import CORPUS_MARGIN
from privinfer.models.nanodet import fit_long_side

Region = tuple[int, int, int, int]  # x1, y1, x2, y2 pixel range inside a chunk (ends exclusive)
WORK_SIZE = 416  # the pipeline's default working size (PipelineConfig.work_size)
WINDOW = 192  # scene chunk side: the face and the body below it
GRID = 8  # chunks start on the embedding's cell grid, as the pipeline's do (32 px, a multiple of 8)


def crop_region(side: int, margin: float = CORPUS_MARGIN) -> Region:
    """The face box of a corpus crop of ``side`` px: its central 1/margin, outward to whole pixels."""
    inset = side * (1 - 1 / margin) / 2
    return int(np.floor(inset)), int(np.floor(inset)), int(np.ceil(side - inset)), int(np.ceil(side - inset))


@dataclass(frozen=True)
class SceneChunk:
    pixels: np.ndarray  # (H, W, 3) uint8, a window of the working-size frame
    regions: tuple[Region, ...]  # every face inside it, chunk pixels


def scene_chunks(
    scenes: CorpusSplit, exclude_files: Sequence[str], find_faces, window: int = WINDOW
) -> list[SceneChunk]:
    """One window per face found (the default detector, `find_faces(rgb) -> list[Detection]`), on
    every scene frame not from ``exclude_files``; each window lists all faces that fall in it."""
    out = []
    for image, file in zip(scenes.images, scenes.files, strict=True):
        if any(file.startswith(name) for name in exclude_files):
            continue
        frame, _ = fit_long_side(image, WORK_SIZE)
        height, width = frame.shape[:2]
        faces = [pixel_extent(d.box) for d in find_faces(frame)]
        for x1, y1, x2, _ in faces:
            left = int(np.clip((x1 + x2) // 2 - window // 2, 0, max(0, width - window))) // GRID * GRID
            top = int(np.clip(y1 - window // 6, 0, max(0, height - window))) // GRID * GRID
            right, bottom = min(width, left + window), min(height, top + window)
            inside = [
                (max(a, left) - left, max(b, top) - top, min(c, right) - left, min(d, bottom) - top)
                for a, b, c, d in faces
                if min(c, right) > max(a, left) and min(d, bottom) > max(b, top)
            ]
            out.append(SceneChunk(np.ascontiguousarray(frame[top:bottom, left:right]), tuple(inside)))
    return out
