"""Drawing results on images for people to look at (never used on what is sent to servers).

Line widths and text are scaled to the image (`Style.for_image`), so an overlay reads the same on a
320 px thumbnail and a 1920 px photo. `annotate` draws a frame's whole story: each chunk shaded by
its treatment, the sensitive boxes, the task detections, and a legend that names each colour and
counts what it marks. Chunks are drawn from their records (`FrameResult.tiles`), whatever shape
the partition gave them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from privinfer.types import Box, Detection, FrameResult, Treatment

TASK_COLOUR = (0, 200, 255)
SENSITIVE_COLOUR = (255, 0, 255)
TREATMENT_COLOURS = {
    Treatment.DISCARDED: (128, 128, 128),
    Treatment.RAW: (0, 200, 0),
    Treatment.PRIVATIZED: (220, 0, 0),
}
# What each treatment means to someone reading the picture, in the legend's words.
TREATMENT_MEANINGS = {
    Treatment.PRIVATIZED: "privatized (sensitive parts hidden)",
    Treatment.RAW: "raw (sent as pixels)",
    Treatment.DISCARDED: "discarded (never sent)",
}
# Where chunks overlap, the more private treatment is drawn last so it stays visible.
_DRAW_ORDER = (Treatment.DISCARDED, Treatment.RAW, Treatment.PRIVATIZED)
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_REFERENCE_SIDE = 640  # the sizes below read well on an image with this long side
_MIN_UNIT = 0.8  # below this the text is too small to read on a small image
_LEGEND_TEXT = 0.8  # legend text size relative to the labels'


@dataclass(frozen=True)
class Style:
    """Sizes for drawing on one image: box line width, label font scale and stroke, padding (pixels)."""

    line: int
    font_scale: float
    font_stroke: int
    pad: int

    @classmethod
    def for_image(cls, width: int, height: int) -> Style:
        """Sizes proportional to the image's long side (2 px lines, 0.5 font at 640 px)."""
        unit = max(max(width, height) / _REFERENCE_SIDE, _MIN_UNIT)
        return cls(line=max(1, round(2 * unit)), font_scale=0.5 * unit, font_stroke=max(1, round(unit)),
                   pad=max(2, round(3 * unit)))  # fmt: skip

    def text_size(self, text: str) -> tuple[int, int]:
        (width, height), _ = cv2.getTextSize(text, _FONT, self.font_scale, self.font_stroke)
        return width, height


def _style(rgb: np.ndarray, style: Style | None) -> Style:
    return style or Style.for_image(rgb.shape[1], rgb.shape[0])


def draw_detections(
    rgb: np.ndarray, detections: Iterable[Detection], colour=TASK_COLOUR, style: Style | None = None
) -> np.ndarray:
    """A copy of the image with each detection's box and 'label score' drawn (label above the box,
    or inside it at the top edge of the image)."""
    canvas = rgb.copy()
    style = _style(rgb, style)
    for detection in detections:
        x1, y1, x2, y2 = (int(round(v)) for v in detection.box.as_list())
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, style.line)
        text = f"{detection.label} {detection.score:.2f}"
        tw, th = style.text_size(text)
        box_h = th + 2 * style.pad
        top = y1 - box_h if y1 - box_h >= 0 else y1
        left = min(max(0, x1), max(0, canvas.shape[1] - tw - 2 * style.pad))
        cv2.rectangle(canvas, (left, top), (left + tw + 2 * style.pad, top + box_h), colour, -1)
        baseline = (left + style.pad, top + style.pad + th)
        cv2.putText(canvas, text, baseline, _FONT, style.font_scale, (0, 0, 0), style.font_stroke, cv2.LINE_AA)
    return canvas


def shade_boxes(
    rgb: np.ndarray, boxes: Iterable[tuple[Box, tuple[int, int, int]]], alpha: float = 0.25, style: Style | None = None
) -> np.ndarray:
    """A copy with each box filled by a translucent colour and outlined (chunk treatment overlay)."""
    style = _style(rgb, style)
    outline = max(1, style.line // 2)
    overlay = rgb.copy()
    outlined = rgb.copy()
    for box, colour in boxes:
        x1, y1, x2, y2 = (int(round(v)) for v in box.as_list())
        cv2.rectangle(overlay, (x1, y1), (x2 - 1, y2 - 1), colour, -1)
        cv2.rectangle(outlined, (x1, y1), (x2 - 1, y2 - 1), colour, outline)
    blended = cv2.addWeighted(overlay, alpha, rgb, 1 - alpha, 0)
    edges = np.any(outlined != rgb, axis=2)
    blended[edges] = outlined[edges]
    return blended


@dataclass(frozen=True)
class LegendEntry:
    """One legend line: a swatch of ``colour`` (``filled`` like a chunk, else outlined like a box) and its text."""

    colour: tuple[int, int, int]
    text: str
    filled: bool


def draw_legend(rgb: np.ndarray, entries: Sequence[LegendEntry], style: Style | None = None) -> np.ndarray:
    """A copy with the entries listed in a dark panel at the bottom-left corner (its text a little
    smaller than the labels', so that it covers less of the picture)."""
    canvas = rgb.copy()
    if not entries:
        return canvas
    base = _style(rgb, style)
    style = Style(base.line, base.font_scale * _LEGEND_TEXT, base.font_stroke, base.pad)
    sizes = [style.text_size(entry.text) for entry in entries]
    row = max(h for _, h in sizes) + 2 * style.pad
    swatch = row - 2 * style.pad
    width = 3 * style.pad + swatch + max(w for w, _ in sizes) + style.pad
    height = row * len(entries) + style.pad
    x0, y0 = 0, max(0, canvas.shape[0] - height)
    panel = canvas[y0:, x0 : x0 + width]
    panel[:] = (panel * 0.3).astype(np.uint8)  # darkened, so the text reads on any photo
    for i, (entry, (_, th)) in enumerate(zip(entries, sizes, strict=True)):
        top = y0 + style.pad + i * row
        corner = (x0 + style.pad, top + style.pad), (x0 + style.pad + swatch, top + style.pad + swatch)
        if entry.filled:
            cv2.rectangle(canvas, *corner, entry.colour, -1)
        else:
            cv2.rectangle(canvas, *corner, entry.colour, style.line)
        baseline = (x0 + 2 * style.pad + swatch + style.pad, top + style.pad + (swatch + th) // 2)
        cv2.putText(canvas, entry.text, baseline, _FONT, style.font_scale, (255, 255, 255), style.font_stroke,
                    cv2.LINE_AA)  # fmt: skip
    return canvas


def legend_entries(result: FrameResult) -> list[LegendEntry]:
    """The legend of one frame's overlay: each treatment, sensitive boxes and detections, counted."""
    entries = []
    for treatment in (Treatment.PRIVATIZED, Treatment.RAW, Treatment.DISCARDED):
        count = sum(tile.treatment == treatment for tile in result.tiles)
        text = f"{TREATMENT_MEANINGS[treatment]}: {count} chunk{'' if count == 1 else 's'}"
        entries.append(LegendEntry(TREATMENT_COLOURS[treatment], text, filled=True))
    return entries + box_legend(result.sensitive, result.detections)


def box_legend(sensitive: Sequence[Detection], detections: Sequence[Detection]) -> list[LegendEntry]:
    """Legend lines for sensitive boxes and task detections, counted."""
    return [
        LegendEntry(SENSITIVE_COLOUR, f"sensitive region: {len(sensitive)}", filled=False),
        LegendEntry(TASK_COLOUR, f"detection: {len(detections)}", filled=False),
    ]


def annotate_detections(rgb: np.ndarray, detections: Sequence[Detection], sensitive: Sequence[Detection]):
    """A copy with task detections and sensitive boxes drawn, and their legend (`privinfer detect`)."""
    style = Style.for_image(rgb.shape[1], rgb.shape[0])
    canvas = draw_detections(rgb, detections, TASK_COLOUR, style)
    canvas = draw_detections(canvas, sensitive, SENSITIVE_COLOUR, style)
    return draw_legend(canvas, box_legend(sensitive, detections), style)


def annotate(rgb: np.ndarray, result: FrameResult) -> np.ndarray:
    """A copy of the frame with chunk treatments shaded, sensitive boxes and task detections
    drawn, and the legend at the bottom-left."""
    style = Style.for_image(rgb.shape[1], rgb.shape[0])
    tiles = sorted(result.tiles, key=lambda tile: _DRAW_ORDER.index(tile.treatment))
    canvas = shade_boxes(rgb, [(tile.box, TREATMENT_COLOURS[tile.treatment]) for tile in tiles], style=style)
    # Sensitive boxes last: where labels collide, what was protected stays readable.
    canvas = draw_detections(canvas, result.detections, TASK_COLOUR, style)
    canvas = draw_detections(canvas, result.sensitive, SENSITIVE_COLOUR, style)
    return draw_legend(canvas, legend_entries(result), style)
