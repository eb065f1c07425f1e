"""Packing frame regions into one detector canvas, and mapping what is found there back to the frame."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage import data

from privinfer.client import detect
from privinfer.client.detect import DetectorOptions
from privinfer.client.detect.canvas import Canvas, pack, render, to_frame
from privinfer.client.detect.cascade import merge_regions
from privinfer.types import Box, Detection

ASTRONAUT_FACE = (180, 80, 272, 178)  # as in test_detect.py, checked by eye

regions = st.lists(
    st.tuples(
        st.integers(0, 600), st.integers(0, 400), st.integers(1, 120), st.integers(1, 120),
        st.sampled_from([0.25, 0.5, 1.0, 1.5, 2.0]),
    ),
    min_size=1, max_size=25,
)  # fmt: skip


def _as_regions(rows) -> list[tuple[Box, float]]:
    return [(Box(x, y, x + w, y + h), scale) for x, y, w, h, scale in rows]


@given(regions, st.integers(0, 12))
@settings(max_examples=200, deadline=None)
def test_placements_lie_inside_the_canvas_and_are_separated_by_the_gap(rows, gap):
    canvas = pack(_as_regions(rows), gap=gap)
    assert canvas.width % 32 == 0 and canvas.height % 32 == 0
    assert len(canvas.placements) == len(rows)
    for p in canvas.placements:
        assert 0 <= p.x and p.x + p.width <= canvas.width and 0 <= p.y and p.y + p.height <= canvas.height
    for i, a in enumerate(canvas.placements):
        for b in canvas.placements[i + 1 :]:
            apart_x = a.x + a.width + gap <= b.x or b.x + b.width + gap <= a.x
            apart_y = a.y + a.height + gap <= b.y or b.y + b.height + gap <= a.y
            assert apart_x or apart_y, f"{a} and {b} are closer than {gap} px"


@given(regions, st.data())
@settings(max_examples=200, deadline=None)
def test_a_box_inside_a_placement_maps_back_inside_its_region(rows, draw):
    canvas = pack(_as_regions(rows))
    p = canvas.placements[draw.draw(st.integers(0, len(rows) - 1))]
    # A box drawn in canvas pixels inside the placement, then mapped: it must land in the source region,
    # at the same relative position.
    fx1, fx2 = sorted(draw.draw(st.floats(0, 1)) for _ in range(2))
    fy1, fy2 = sorted(draw.draw(st.floats(0, 1)) for _ in range(2))
    box = Box(p.x + fx1 * p.width, p.y + fy1 * p.height, p.x + fx2 * p.width, p.y + fy2 * p.height)
    centre_x, centre_y = (box.x1 + box.x2) / 2, (box.y1 + box.y2) / 2
    if centre_x >= p.x + p.width or centre_y >= p.y + p.height:
        return  # the centre sits on the placement's far edge, which belongs to no placement
    (mapped,) = to_frame([Detection(box, "face", 0.9)], canvas)
    s = p.source
    assert mapped.box.x1 == pytest.approx(s.x1 + fx1 * s.width, abs=1e-6)
    assert mapped.box.y2 == pytest.approx(s.y1 + fy2 * s.height, abs=1e-6)
    assert s.x1 - 1e-6 <= mapped.box.x1 <= mapped.box.x2 <= s.x2 + 1e-6
    assert s.y1 - 1e-6 <= mapped.box.y1 <= mapped.box.y2 <= s.y2 + 1e-6


def test_a_box_reaching_past_its_placement_is_clipped_to_it_and_one_centred_outside_all_dropped():
    canvas = pack([(Box(0, 0, 40, 40), 1.0), (Box(100, 0, 140, 40), 1.0)], gap=8)
    first = next(p for p in canvas.placements if p.source.x1 == 0)
    right = first.x + first.width  # the gap (or the padding) starts here
    spill = Detection(Box(right - 10, first.y + 10, right + 6, first.y + 20), "face", 0.9)  # centre inside
    outside = Detection(Box(right + 1, first.y + 10, right + 7, first.y + 20), "face", 0.9)  # centre in the gap
    (mapped,) = to_frame([spill, outside], canvas)
    assert mapped.box == Box(30, 10, 40, 20)


def test_render_draws_each_region_scaled_at_its_placement_and_black_between():
    rgb = np.zeros((100, 200, 3), np.uint8)
    rgb[10:30, 20:60] = 200  # region A: 40x20, drawn at half size
    rgb[50:90, 150:190] = 90  # region B: 40x40, drawn as it is
    canvas = pack([(Box(20, 10, 60, 30), 0.5), (Box(150, 50, 190, 90), 1.0)], gap=8)
    pixels = render(rgb, canvas)
    a, b = canvas.placements
    assert (a.width, a.height, b.width, b.height) == (20, 10, 40, 40)
    assert (pixels[a.y : a.y + a.height, a.x : a.x + a.width] == 200).all()
    assert (pixels[b.y : b.y + b.height, b.x : b.x + b.width] == 90).all()
    outside = np.ones(pixels.shape[:2], bool)
    for p in (a, b):
        outside[p.y : p.y + p.height, p.x : p.x + p.width] = False
    assert (pixels[outside] == 0).all()


def test_a_face_found_on_a_packed_canvas_maps_back_to_its_frame_box():
    """The astronaut's face, packed at half size among two other regions, is found by CenterFace on
    the canvas and mapped back onto the face in the frame."""
    rgb = data.astronaut()
    face_region = Box(130, 30, 330, 230)
    canvas = pack([(Box(0, 300, 120, 420), 1.0), (face_region, 0.5), (Box(400, 400, 500, 500), 1.0)])
    faces = detect.create("faces", DetectorOptions(threshold=0.5, mask_scale=1.0))
    on_canvas = faces(render(rgb, canvas))
    mapped = to_frame(on_canvas, canvas)
    assert len(mapped) == 1
    box = mapped[0].box
    truth = Box(*ASTRONAUT_FACE)
    inter = (min(box.x2, truth.x2) - max(box.x1, truth.x1)) * (min(box.y2, truth.y2) - max(box.y1, truth.y1))
    assert inter / (box.area + truth.area - inter) > 0.5


def test_overlapping_regions_are_merged_at_the_larger_scale_and_apart_ones_kept():
    merged = merge_regions([(Box(0, 0, 40, 40), 1.0), (Box(10, 10, 50, 50), 2.0), (Box(200, 0, 220, 20), 0.5)])
    assert sorted(merged, key=lambda r: r[0].x1) == [(Box(0, 0, 50, 50), 2.0), (Box(200, 0, 220, 20), 0.5)]


def test_an_empty_canvas_has_no_pixels():
    assert pack([]) == Canvas(0, 0, ())


@given(regions)
@settings(max_examples=100, deadline=None)
def test_aligned_placements_start_on_the_grid(rows):
    canvas = pack(_as_regions(rows), gap=8, align=32)
    assert all(p.x % 32 == 0 and p.y % 32 == 0 for p in canvas.placements)
    assert canvas.width % 32 == 0 and canvas.height % 32 == 0
