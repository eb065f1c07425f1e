"""Typed values that cross the boundaries between privinfer's stages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # types only: the server interface must not load with these plain values
    from privinfer.serve.base import Payload


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in pixel coordinates, x2/y2 exclusive edges (float)."""

    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def width(self) -> float:
        return max(0.0, self.x2 - self.x1)

    @property
    def height(self) -> float:
        return max(0.0, self.y2 - self.y1)

    @property
    def area(self) -> float:
        return self.width * self.height

    def as_list(self) -> list[float]:
        return [float(self.x1), float(self.y1), float(self.x2), float(self.y2)]

    def scaled_about_centre(self, factor: float) -> Box:
        """The box grown (factor > 1) or shrunk about its centre, as deface's mask_scale."""
        # Written as a margin on each side so that factor 1 returns the box bit for bit.
        dx, dy = (factor - 1) * (self.x2 - self.x1) / 2, (factor - 1) * (self.y2 - self.y1) / 2
        return Box(self.x1 - dx, self.y1 - dy, self.x2 + dx, self.y2 + dy)

    def clipped(self, width: int, height: int) -> Box:
        """The part of the box inside an image of the given size."""
        return Box(
            min(max(self.x1, 0.0), width),
            min(max(self.y1, 0.0), height),
            min(max(self.x2, 0.0), width),
            min(max(self.y2, 0.0), height),
        )


@dataclass(frozen=True)
class Detection:
    """One detected object: a box in image coordinates, a class label and a confidence."""

    box: Box
    label: str
    score: float

    def to_json(self) -> dict:
        return {
            "box": [round(v, 2) for v in self.box.as_list()],
            "label": self.label,
            "score": round(float(self.score), 4),
        }


@dataclass(frozen=True)
class Image:
    """A decoded image: HxWx3 uint8 in RGB order, plus where it came from."""

    pixels: np.ndarray
    source: str

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])


class Treatment:
    """How the scheduler treats a chunk (the RoI x sensitivity policy)."""

    RAW = "raw"  # inside the RoI, no sensitive pixel: sent as pixels
    PRIVATIZED = "privatized"  # inside the RoI, touches a sensitive box: obfuscated before sending
    DISCARDED = "discarded"  # outside the RoI: never leaves the client


@dataclass(frozen=True)
class Chunk:
    """A part of the work frame: the integer pixel box (x2, y2 exclusive) that is sent, the core it
    answers for (the merge keeps a detection from the chunk whose core holds its centre), and its
    treatment."""

    index: int
    box: Box
    treatment: str
    core: Box | None = None  # None: the box itself

    @property
    def owned(self) -> Box:
        return self.box if self.core is None else self.core


@dataclass(frozen=True)
class TileRecord:
    """What happened to one chunk: the audit trail of everything that left the client."""

    box: Box
    treatment: str
    obfuscator: str | None
    server: str | None
    bytes: int  # everything sent for the chunk: its pixels, and its feature patch if any
    payload: str | None  # "pixels", "obfuscated-pixels", "patched", "embedding" or None when nothing was sent
    patch_cells: int = 0  # embedding cells of sensitive regions sent as obfuscated features
    answer_bytes: int = 0  # the server's answer for the chunk (its detections tensor)

    def to_json(self) -> dict:
        return {
            "box": [int(v) for v in self.box.as_list()],
            "treatment": self.treatment,
            "obfuscator": self.obfuscator,
            "server": self.server,
            "bytes": self.bytes,
            "payload": self.payload,
            "patch_cells": self.patch_cells,
            "answer_bytes": self.answer_bytes,
        }


@dataclass(frozen=True)
class SentChunk:
    """One chunk's payload exactly as it left the client (the object handed to the server pool),
    where it was cut from (``box``, work-frame pixels) and every server it was handed to, in order
    (more than one when a failed or busy server's chunk was sent again elsewhere)."""

    box: Box
    servers: tuple[str, ...]
    payload: Payload


@dataclass(frozen=True)
class SentFrame:
    """Everything that left the client for one frame, recorded at the server pool: the work frame's
    size (the frame shrunk to ``--work-size``, where chunks are cut) and the chunks sent, in order."""

    width: int
    height: int
    chunks: tuple[SentChunk, ...]


@dataclass(frozen=True)
class FrameResult:
    """The pipeline's answer for one frame. ``sent``: what left the client, when the pipeline was
    asked to record it (``PipelineConfig.record_sent``); never part of the JSON record."""

    frame: int
    detections: list[Detection]
    sensitive: list[Detection]
    tiles: list[TileRecord]
    timings_ms: dict[str, float]
    roi: list[Box]
    sent: SentFrame | None = None

    def to_json(self) -> dict:
        return {
            "frame": self.frame,
            "detections": [d.to_json() for d in self.detections],
            "tiles": [t.to_json() for t in self.tiles],
            "sensitive": [d.to_json() for d in self.sensitive],
            "timings_ms": {k: round(v, 3) for k, v in self.timings_ms.items()},
        }

    @property
    def bytes_sent(self) -> int:
        return sum(t.bytes for t in self.tiles)
