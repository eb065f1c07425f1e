"""What the servers saw: a frame rebuilt from the payloads that left the client (``NAME_sent.jpg``).

Built only from the recording (`FrameResult.sent`, kept where payloads are handed to the server
pool), never recomputed from the frame: a user deciding whether to trust the product looks at
exactly what went out. Each payload's pixels are placed where its chunk was cut from, as sent
(sensitive regions filled, blurred or pixelated by the obfuscator); the frame is grey where
nothing was sent; each chunk is outlined in its server's colour and labelled with the server's
name; each cell whose *features* went instead of pixels (a feature patch, a whole-chunk embedding)
is hatched. The picture is at the working size the chunks were cut at, enlarged by a whole factor
so that labels read.

`SentImage.annotated` marks every pixel the drawing covers (outlines, labels, hatching, legend):
every other pixel is either a payload's own pixel or grey, which is what the tests check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from privinfer.cli.draw import Style
from privinfer.client.privatize import cell_boxes
from privinfer.models.nanodet import padded_side
from privinfer.serve import EMBEDDING, Payload
from privinfer.types import Box, SentFrame

SENT_SUFFIX = "_sent"  # dog.jpg -> dog_sent.jpg, clip.mp4 -> clip_sent.mp4
NOT_SENT = (128, 128, 128)  # grey: nothing of the frame here left the client
HATCH_COLOUR = (255, 0, 255)
SERVER_COLOURS = ((0, 200, 0), (0, 160, 255), (255, 160, 0), (255, 60, 60), (160, 80, 255), (0, 220, 220))
MIN_LONG_SIDE = 800  # enlarged by a whole factor until the long side reaches this (labels must read)
HATCH_PERIOD = 5  # pixels between hatch lines, after enlarging
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_CELL = 8  # a whole-chunk embedding's cells, in work pixels (the model's stride at the cut)


@dataclass(frozen=True)
class SentImage:
    """The rebuilt frame: ``pixels`` (H*zoom, W*zoom, 3) RGB uint8, ``annotated`` (H*zoom, W*zoom)
    bool where a drawing covers the payloads' pixels, and the whole ``zoom`` factor."""

    pixels: np.ndarray
    annotated: np.ndarray
    zoom: int


def zoom_for(width: int, height: int) -> int:
    """The whole factor that brings the long side to at least `MIN_LONG_SIDE` (1 when it is already)."""
    return max(1, math.ceil(MIN_LONG_SIDE / max(width, height, 1)))


def payload_pixels(payload: Payload) -> np.ndarray | None:
    """The pixels a payload carries (H, W, 3) uint8, or None for one that carries only features."""
    return None if payload.kind == EMBEDDING else payload.data


def feature_cells(payload: Payload, box: Box) -> list[Box]:
    """The cells (work-frame boxes) whose features the payload sends: its patch's cells, or every
    cell of a whole-chunk embedding."""
    if payload.patch is not None:
        return cell_boxes(payload.patch.cells, box)
    if payload.kind != EMBEDDING:
        return []
    rows, columns = padded_side(int(box.height)) // _CELL, padded_side(int(box.width)) // _CELL
    return cell_boxes(np.arange(rows * columns), box)


def compose(sent: SentFrame, zoom: int) -> tuple[np.ndarray, np.ndarray]:
    """The payloads' pixels at their chunks' places, enlarged ``zoom`` times, grey elsewhere; and
    the mask of pixels some payload's pixels cover. Later chunks are drawn over earlier ones."""
    pixels = np.full((sent.height * zoom, sent.width * zoom, 3), NOT_SENT, np.uint8)
    covered = np.zeros(pixels.shape[:2], bool)
    for chunk in sent.chunks:
        data = payload_pixels(chunk.payload)
        if data is None:
            continue
        x1, y1 = int(chunk.box.x1) * zoom, int(chunk.box.y1) * zoom
        enlarged = np.repeat(np.repeat(data, zoom, axis=0), zoom, axis=1)
        height, width = enlarged.shape[:2]
        pixels[y1 : y1 + height, x1 : x1 + width] = enlarged
        covered[y1 : y1 + height, x1 : x1 + width] = True
    return pixels, covered


def render_sent(sent: SentFrame) -> SentImage:
    """What the servers saw, for people: `compose`, then hatching on feature cells, each chunk's
    outline and server label, and a legend. Raises nothing: an empty recording is all grey."""
    zoom = zoom_for(sent.width, sent.height)
    pixels, _ = compose(sent, zoom)
    layer = _Layer(pixels)
    style = Style.for_image(pixels.shape[1], pixels.shape[0])
    servers = sorted({server for chunk in sent.chunks for server in chunk.servers})
    colours = {server: SERVER_COLOURS[i % len(SERVER_COLOURS)] for i, server in enumerate(servers)}
    for chunk in sent.chunks:
        for cell in feature_cells(chunk.payload, chunk.box):
            layer.hatch(_zoomed(cell, zoom))
    for chunk in sent.chunks:
        colour = colours[chunk.servers[-1]]  # the server that answered (earlier ones failed or were busy)
        layer.outline(_zoomed(chunk.box, zoom), colour, style.line)
        layer.label(_zoomed(chunk.box, zoom), " then ".join(chunk.servers), colour, style)
    counts = {server: sum(server in chunk.servers for chunk in sent.chunks) for server in servers}
    legend = [(colours[s], f"sent to {s}: {counts[s]} chunk{'' if counts[s] == 1 else 's'}") for s in servers]
    legend += [(NOT_SENT, "grey: never sent"), (HATCH_COLOUR, "hatched: features sent, not pixels")]
    layer.legend(legend, style)
    return SentImage(layer.pixels, layer.mask.astype(bool), zoom)


def _zoomed(box: Box, zoom: int) -> tuple[int, int, int, int]:
    return tuple(int(round(v * zoom)) for v in box.as_list())


def hatch_lines(x1: int, y1: int, x2: int, y2: int) -> np.ndarray:
    """Which pixels of the box (x1, y1)-(x2, y2) of the picture lie on a hatch line: diagonals every
    `HATCH_PERIOD` pixels, continuous from one cell to the next."""
    return (np.arange(y1, y2)[:, None] + np.arange(x1, x2)[None, :]) % HATCH_PERIOD == 0


class _Layer:
    """Draws on the picture and, with the same shapes, on a mask of what the drawing covers."""

    def __init__(self, pixels: np.ndarray) -> None:
        self.pixels = pixels
        self.mask = np.zeros(pixels.shape[:2], np.uint8)

    def hatch(self, box: tuple[int, int, int, int]) -> None:
        x1, y1, x2, y2 = box
        lines = hatch_lines(x1, y1, x2, y2)
        self.pixels[y1:y2, x1:x2][lines] = HATCH_COLOUR
        self.mask[y1:y2, x1:x2][lines] = 1

    def outline(self, box: tuple[int, int, int, int], colour, thickness: int) -> None:
        x1, y1, x2, y2 = box
        for target, value in ((self.pixels, colour), (self.mask, 1)):
            cv2.rectangle(target, (x1, y1), (x2 - 1, y2 - 1), value, thickness)

    def label(self, box: tuple[int, int, int, int], text: str, colour, style: Style) -> None:
        """``text`` on a patch of ``colour`` inside the box's top-left corner (cut at the box's right edge)."""
        x1, y1, x2, _ = box
        width, height = style.text_size(text)
        patch = np.full((height + 2 * style.pad, width + 2 * style.pad, 3), colour, np.uint8)
        cv2.putText(patch, text, (style.pad, style.pad + height), _FONT, style.font_scale, (0, 0, 0),
                    style.font_stroke, cv2.LINE_AA)  # fmt: skip
        self._paste(patch[:, : max(0, x2 - x1)], x1, y1)

    def legend(self, entries: list[tuple[tuple[int, int, int], str]], style: Style) -> None:
        """A dark panel at the bottom-left listing ``(colour, text)`` entries."""
        sizes = [style.text_size(text) for _, text in entries]
        row = max(h for _, h in sizes) + 2 * style.pad
        swatch = row - 2 * style.pad
        panel = np.full((row * len(entries) + style.pad, 4 * style.pad + swatch + max(w for w, _ in sizes), 3), 32,
                        np.uint8)  # fmt: skip
        for i, ((colour, text), (_, th)) in enumerate(zip(entries, sizes, strict=True)):
            y = style.pad + i * row
            cv2.rectangle(panel, (style.pad, y + style.pad), (style.pad + swatch, y + style.pad + swatch), colour, -1)
            baseline = (3 * style.pad + swatch, y + style.pad + (swatch + th) // 2)
            cv2.putText(panel, text, baseline, _FONT, style.font_scale, (255, 255, 255), style.font_stroke,
                        cv2.LINE_AA)  # fmt: skip
        self._paste(panel, 0, self.pixels.shape[0] - panel.shape[0])

    def _paste(self, patch: np.ndarray, x: int, y: int) -> None:
        """``patch`` with its top-left corner at (x, y), cut at the picture's edges, and marked."""
        height, width = self.pixels.shape[:2]
        top, left = max(0, -y), max(0, -x)
        y, x = max(0, y), max(0, x)
        part = patch[top : top + height - y, left : left + width - x]
        self.pixels[y : y + part.shape[0], x : x + part.shape[1]] = part
        self.mask[y : y + part.shape[0], x : x + part.shape[1]] = 1
