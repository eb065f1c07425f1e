"""The overlay people look at: sizes scale with the image, chunks are drawn from their records, the legend counts."""

from __future__ import annotations

import numpy as np

from privinfer.cli.draw import (
    SENSITIVE_COLOUR,
    TREATMENT_COLOURS,
    Style,
    annotate,
    draw_detections,
    legend_entries,
)
from privinfer.types import Box, Detection, FrameResult, TileRecord, Treatment


def _result(tiles, sensitive=(), detections=()) -> FrameResult:
    return FrameResult(0, list(detections), list(sensitive), list(tiles), {}, [])


def _record(box, treatment) -> TileRecord:
    return TileRecord(Box(*box), treatment, None, None, 0, None)


def test_lines_and_text_grow_with_the_image():
    small, reference, large = (Style.for_image(w, int(w * 0.75)) for w in (320, 640, 1920))
    assert (reference.line, reference.font_scale) == (2, 0.5)
    assert large.line == 3 * reference.line and large.font_scale == 3 * reference.font_scale
    # A label on a 1920 px photo is as tall, relative to the photo, as on a 640 px frame.
    assert abs(large.text_size("person 0.87")[1] / 1920 - reference.text_size("person 0.87")[1] / 640) < 0.003
    assert small.font_scale >= 0.4, "never too small to read"


def test_chunks_are_shaded_from_their_records_whatever_their_shape():
    grey = np.full((200, 300, 3), 128, np.uint8)
    # Not a grid: different sizes, one overlapping another.
    tiles = [
        _record((0, 0, 190, 200), Treatment.RAW),
        _record((20, 30, 90, 170), Treatment.PRIVATIZED),
        _record((200, 10, 290, 60), Treatment.DISCARDED),
    ]

    canvas = annotate(grey, _result(tiles))

    def tint(x, y):
        return canvas[y, x].astype(int) - 128

    red, green = tint(55, 60), tint(150, 120)
    assert red[0] > 10 and red[1] < 0, "the privatized chunk wins where it overlaps the raw one"
    assert green[1] > 10 and green[0] < 0
    assert abs(tint(245, 35)).max() <= 2, "discarded is grey on grey: no tint"
    assert np.array_equal(canvas[0, 150], TREATMENT_COLOURS[Treatment.RAW]), "the chunk is outlined in its colour"
    assert abs(tint(250, 120)).max() <= 2, "no chunk there: untouched"


def test_the_legend_names_and_counts_each_thing_drawn():
    face = Detection(Box(10, 10, 40, 40), "face", 0.9)
    person = Detection(Box(5, 5, 60, 120), "person", 0.8)
    tiles = [_record((0, 0, 100, 100), Treatment.PRIVATIZED), _record((100, 0, 200, 100), Treatment.RAW)] * 2

    texts = [entry.text for entry in legend_entries(_result(tiles, [face], [person, person]))]

    assert texts == [
        "privatized (sensitive parts hidden): 2 chunks",
        "raw (sent as pixels): 2 chunks",
        "discarded (never sent): 0 chunks",
        "sensitive region: 1",
        "detection: 2",
    ]


def test_the_legend_sits_in_a_dark_panel_at_the_bottom_left_and_the_frame_keeps_its_size():
    white = np.full((480, 640, 3), 255, np.uint8)

    canvas = annotate(white, _result([]))

    assert canvas.shape == white.shape
    assert canvas[470, 5:20].mean() < 120, "darkened behind the legend"
    assert canvas[10, 630].tolist() == [255, 255, 255], "the rest untouched"


def test_a_label_at_the_top_edge_stays_inside_the_image():
    canvas = draw_detections(np.zeros((100, 100, 3), np.uint8), [Detection(Box(50, 0, 99, 40), "face", 0.5)],
                             SENSITIVE_COLOUR)  # fmt: skip
    # The label's filled box is drawn inside, below the top edge, and does not run off the right side.
    assert (canvas[2:10, :, :] == SENSITIVE_COLOUR).all(axis=2).any()
    assert (canvas[:, 99] == SENSITIVE_COLOUR).all(axis=1).any()
