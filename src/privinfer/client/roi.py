"""Region-of-interest providers: which part of the frame the task needs at all.

Tiles outside every RoI box are discarded on the client (they cost nothing and leak nothing).
Providers are built by name; a provider sees each frame's size and, after the frame, its task
detections (the tracked provider uses them to focus the next frame).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from privinfer.errors import ConfigError
from privinfer.types import Box, Detection


class RoiProvider:
    """Whole frame: the default."""

    def roi(self, frame_index: int, width: int, height: int) -> list[Box]:
        return [Box(0, 0, width, height)]

    def observe(self, frame_index: int, detections: Sequence[Detection]) -> None:
        """Called with each frame's task detections; stateless providers ignore it."""


class ExplicitRoi(RoiProvider):
    """Caller-given boxes (``--roi x1,y1,x2,y2``), clipped to the frame."""

    def __init__(self, boxes: Sequence[Box]) -> None:
        if not boxes:
            raise ConfigError("the 'boxes' RoI needs at least one --roi x1,y1,x2,y2")
        for box in boxes:
            if box.x2 <= box.x1 or box.y2 <= box.y1:
                raise ConfigError(f"RoI box {box.as_list()} is empty: need x1 < x2 and y1 < y2")
        self.boxes = list(boxes)

    def roi(self, frame_index: int, width: int, height: int) -> list[Box]:
        clipped = [b.clipped(width, height) for b in self.boxes]
        return [b for b in clipped if b.area > 0]


class FoveaRoi(RoiProvider):
    """A fixed centre box covering ``fraction`` of each side (headsets: where the user looks)."""

    def __init__(self, fraction: float = 0.5) -> None:
        if not 0 < fraction <= 1:
            raise ConfigError(f"fovea fraction must be in (0, 1], got {fraction}")
        self.fraction = fraction

    def roi(self, frame_index: int, width: int, height: int) -> list[Box]:
        return [Box(0, 0, width, height).scaled_about_centre(self.fraction)]


@dataclass
class TrackedRoi(RoiProvider):
    """In video: the previous frame's detections grown by ``margin``, the whole frame every
    ``refresh`` frames (and whenever nothing was detected), so new objects are still found."""

    margin: float = 1.5
    refresh: int = 10
    _previous: list[Box] | None = None

    def __post_init__(self) -> None:
        if self.margin < 1 or self.refresh < 1:
            raise ConfigError(f"tracked RoI needs margin >= 1 and refresh >= 1, got {self.margin}, {self.refresh}")

    def roi(self, frame_index: int, width: int, height: int) -> list[Box]:
        if not self._previous or frame_index % self.refresh == 0:
            return [Box(0, 0, width, height)]
        grown = [b.scaled_about_centre(self.margin).clipped(width, height) for b in self._previous]
        return [b for b in grown if b.area > 0] or [Box(0, 0, width, height)]

    def observe(self, frame_index: int, detections: Sequence[Detection]) -> None:
        self._previous = [d.box for d in detections]


ROI_PROVIDERS: dict[str, Callable[..., RoiProvider]] = {
    "frame": RoiProvider,
    "boxes": ExplicitRoi,
    "fovea": FoveaRoi,
    "tracked": TrackedRoi,
}


def create_roi(name: str, **options) -> RoiProvider:
    if name not in ROI_PROVIDERS:
        raise ConfigError(f"unknown RoI provider '{name}'; choose from: {', '.join(sorted(ROI_PROVIDERS))}")
    return ROI_PROVIDERS[name](**options)


def parse_box(text: str) -> Box:
    """'x1,y1,x2,y2' -> Box; raises ConfigError naming the text when malformed."""
    try:
        x1, y1, x2, y2 = (float(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"RoI '{text}' must be four numbers x1,y1,x2,y2") from None
    return Box(x1, y1, x2, y2)
