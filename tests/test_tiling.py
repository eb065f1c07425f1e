"""The fixed tile grid and the RoI x sensitivity policy: pure geometry, checked on examples and as properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privinfer.client.tiling import classify_tiles, pixel_extent, tile_grid, tile_starts, touches
from privinfer.errors import ConfigError
from privinfer.types import Box, Treatment


def test_tile_starts_cover_with_overlap():
    assert tile_starts(100, 256, 0.2) == [0]
    starts = tile_starts(768, 256, 0.2)
    assert starts[0] == 0 and starts[-1] == 768 - 256
    assert all(b - a <= 256 * 0.8 + 1 for a, b in zip(starts, starts[1:], strict=False))


@pytest.mark.parametrize(("tile", "overlap"), [(16, 0.2), (256, -0.1), (256, 0.95)])
def test_bad_tile_options_are_rejected(tile, overlap):
    with pytest.raises(ConfigError):
        tile_grid(640, 480, tile, overlap)


def test_policy_table():
    tiles = [Box(0, 0, 100, 100), Box(100, 0, 200, 100), Box(200, 0, 300, 100)]
    roi = [Box(0, 0, 200, 100)]
    sensitive = [Box(10, 10, 20, 20)]
    treatments = [t.treatment for t in classify_tiles(tiles, roi, sensitive)]
    assert treatments == [Treatment.PRIVATIZED, Treatment.RAW, Treatment.DISCARDED]


def test_touch_uses_conservative_pixel_rounding():
    # A box ending at x=100.2 touches pixel column 100, which belongs to the next tile.
    assert touches(Box(100, 0, 200, 50), Box(50, 0, 100.2, 10))
    assert not touches(Box(100, 0, 200, 50), Box(50, 0, 100.0, 10))


frames = st.tuples(st.integers(1, 900), st.integers(1, 900))
boxes = st.tuples(st.floats(-50, 950), st.floats(-50, 950), st.floats(0, 400), st.floats(0, 400)).map(
    lambda t: Box(t[0], t[1], t[0] + t[2], t[1] + t[3])
)


@settings(max_examples=300, deadline=None)
@given(
    frames,
    st.integers(32, 512),
    st.floats(0, 0.9),
    st.lists(boxes, max_size=6),
    st.lists(boxes, min_size=1, max_size=3),
)
def test_tiling_properties(size, tile, overlap, sensitive, roi):
    width, height = size
    grid = tile_grid(width, height, tile, overlap)
    covered = np.zeros((height, width), dtype=bool)
    for box in grid:
        assert 0 <= box.x1 < box.x2 <= width and 0 <= box.y1 < box.y2 <= height
        covered[int(box.y1) : int(box.y2), int(box.x1) : int(box.x2)] = True
    assert covered.all(), "every pixel of the frame is in some tile"

    sensitive_mask = np.zeros((height, width), dtype=bool)
    for box in sensitive:
        x1, y1, x2, y2 = pixel_extent(box)
        sensitive_mask[max(y1, 0) : max(y2, 0), max(x1, 0) : max(x2, 0)] = True
    roi_mask = np.zeros((height, width), dtype=bool)
    for box in roi:
        x1, y1, x2, y2 = pixel_extent(box)
        roi_mask[max(y1, 0) : max(y2, 0), max(x1, 0) : max(x2, 0)] = True
    for tile_ in classify_tiles(grid, roi, sensitive):
        x1, y1, x2, y2 = (int(v) for v in tile_.box.as_list())
        if tile_.treatment == Treatment.RAW:
            assert not sensitive_mask[y1:y2, x1:x2].any(), "a raw tile never holds a sensitive pixel"
        if tile_.treatment != Treatment.DISCARDED:
            assert roi_mask[y1:y2, x1:x2].any()
        else:
            assert not roi_mask[y1:y2, x1:x2].any()
    # Every RoI pixel is in a tile that is sent (raw or privatized).
    sent = np.zeros((height, width), dtype=bool)
    for tile_ in classify_tiles(grid, roi, sensitive):
        if tile_.treatment != Treatment.DISCARDED:
            x1, y1, x2, y2 = (int(v) for v in tile_.box.as_list())
            sent[y1:y2, x1:x2] = True
    assert not (roi_mask & ~sent).any()
