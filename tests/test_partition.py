"""The content-aware partition: pure functions on boxes and numbers, checked on examples and as properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privinfer.client.partition import (
    DISCOVERY,
    PartitionOptions,
    PartitionRequest,
    content_aware,
    covered_area,
    grid,
    strips,
)
from privinfer.types import Box

OPTIONS = PartitionOptions()

sizes = st.tuples(st.integers(64, 900), st.integers(64, 900))
relative = st.tuples(st.floats(0, 0.95), st.floats(0, 0.95), st.floats(0.01, 0.5), st.floats(0.01, 0.5))


def _boxes(width: int, height: int, parts) -> tuple[Box, ...]:
    return tuple(
        Box(x * width, y * height, min(width, (x + w) * width), min(height, (y + h) * height)) for x, y, w, h in parts
    )


def _mask(width: int, height: int, boxes) -> np.ndarray:
    mask = np.zeros((height, width), dtype=np.int32)
    for b in boxes:
        mask[int(b.y1) : int(np.ceil(b.y2)), int(b.x1) : int(np.ceil(b.x2))] += 1
    return mask


@settings(max_examples=300, deadline=None)
@given(
    sizes,
    st.lists(relative, min_size=1, max_size=2),
    st.lists(relative, max_size=8),
    st.lists(st.floats(0.2, 5), min_size=1, max_size=4),
)
def test_partition_properties(size, roi_parts, object_parts, speeds):
    width, height = size
    roi, objects = _boxes(width, height, roi_parts), _boxes(width, height, object_parts)
    chunks = content_aware(PartitionRequest(width, height, roi, objects, tuple(speeds)))
    assert 1 <= len(chunks) <= len(speeds), "at most one chunk per server"
    area = covered_area(roi, width, height)
    cores = _mask(width, height, [c.core for c in chunks])
    inside = _mask(width, height, [area])
    assert (cores == inside).all(), "the cores tile the covered area: each of its pixels in exactly one"
    assert (_mask(width, height, roi) == 0)[_mask(width, height, [c.box for c in chunks]) == 0].all(), (
        "every RoI pixel is in a chunk that is sent"
    )
    for chunk in chunks:
        assert area.x1 <= chunk.box.x1 <= chunk.core.x1 and chunk.core.x2 <= chunk.box.x2 <= area.x2
        assert area.y1 <= chunk.box.y1 <= chunk.core.y1 and chunk.core.y2 <= chunk.box.y2 <= area.y2
        for edge, limit in ((chunk.box.x1, area.x1), (chunk.box.y1, area.y1)):
            assert edge % OPTIONS.align == 0 or edge == limit, "chunks start on the model's 32 px grid"


@settings(max_examples=300, deadline=None)
@given(sizes, st.lists(relative, max_size=8), st.integers(1, 4))
def test_no_known_object_is_cut(size, object_parts, servers):
    """Each known object lies whole, with its context, in the chunk whose core holds its centre."""
    width, height = size
    objects = _boxes(width, height, object_parts)
    chunks = content_aware(PartitionRequest(width, height, (Box(0, 0, width, height),), objects, (1.0,) * servers))
    for obj in objects:
        cx, cy = (obj.x1 + obj.x2) / 2, (obj.y1 + obj.y2) / 2
        holder = next(c for c in chunks if c.core.x1 <= cx <= c.core.x2 and c.core.y1 <= cy <= c.core.y2)
        assert holder.box.x1 <= max(0, obj.x1 - OPTIONS.object_context) + 1e-6
        assert holder.box.x2 >= min(width, obj.x2 + OPTIONS.object_context) - 1e-6
        assert holder.box.y1 <= obj.y1 and holder.box.y2 >= obj.y2


def test_cuts_avoid_objects_and_strips_follow_the_servers_speeds():
    people = (Box(40, 50, 150, 300), Box(180, 60, 250, 300), Box(300, 40, 400, 300))  # gaps at 150-180, 250-300
    chunks = strips(Box(0, 0, 416, 320), people, (1.0, 1.0), OPTIONS)
    assert [c.core.x2 for c in chunks][:1] == [160.0], "the cut moves from 208 to the gap at 160"
    fast_slow = strips(Box(0, 0, 416, 320), (), (3.0, 1.0), OPTIONS)
    assert fast_slow[0].core.width > 2 * fast_slow[1].core.width, "the faster server gets the wider strip"
    tall = strips(Box(0, 0, 200, 400), (), (1.0, 1.0), OPTIONS)
    assert tall[0].core.x2 == 200 and tall[0].core.y2 == 192, "a tall frame is cut across its long side"


def test_fewer_chunks_than_servers_when_a_split_buys_little():
    big = (Box(20, 10, 380, 310),)  # one object over most of the frame: any cut must go around it
    request = PartitionRequest(416, 320, (Box(0, 0, 416, 320),), big, (1.0, 1.0, 1.0))
    assert len(content_aware(request)) == 1
    small = tuple(Box(20 + 60 * i, 100, 50 + 60 * i, 160) for i in range(6))  # pedestrians, far apart
    assert len(content_aware(PartitionRequest(416, 320, (Box(0, 0, 416, 320),), small, (1.0, 1.0)))) == 2


def test_an_roi_is_covered_and_nothing_beyond_it_is_sent():
    roi = (Box(100, 50, 300, 200),)
    chunks = content_aware(PartitionRequest(640, 480, roi, (), (1.0, 1.0)))
    assert min(c.box.x1 for c in chunks) == 96 and max(c.box.x2 for c in chunks) == 300
    assert min(c.box.y1 for c in chunks) == 32 and max(c.box.y2 for c in chunks) == 200


def test_discovery_whole_sends_one_chunk_and_blind_splits_around_the_bodies_faces_imply():
    face = Box(170, 20, 200, 60)  # its body hangs below it, about three face widths wide: 140-230
    request = PartitionRequest(416, 320, (Box(0, 0, 416, 320),), (face,), (1.0, 1.0))
    assert len(content_aware(DISCOVERY["whole"](request, [face]))) == 1
    assert content_aware(request)[0].core.x2 == 224, "without the body, the cut would pass the face but cross the body"
    chunks = content_aware(DISCOVERY["blind"](request, [face]))
    assert len(chunks) == 2
    assert chunks[0].core.x2 == 256, "the cut goes round the body below the face"


def test_discovery_whole_keeps_the_fastest_server_s_own_call_cost():
    request = PartitionRequest(416, 320, (Box(0, 0, 416, 320),), (), (1.0, 3.0, 2.0), (0.01, 0.03, 0.02))
    whole = DISCOVERY["whole"](request, [])
    assert (whole.speeds, whole.call_seconds) == ((3.0,), (0.03,))
    assert len(content_aware(whole)) == 1
    assert DISCOVERY["whole"](PartitionRequest(416, 320, (), (), (2.0, 1.0)), []).call_seconds == ()


@settings(max_examples=200, deadline=None)
@given(st.integers(32, 700), st.integers(32, 700), st.integers(32, 300), st.floats(0, 0.6))
def test_grid_cores_tile_the_frame(width, height, tile, overlap):
    chunks = grid(width, height, tile, overlap)
    assert (_mask(width, height, [c.core for c in chunks]) == 1).all()
    for chunk in chunks:
        assert chunk.box.x1 <= chunk.core.x1 and chunk.core.x2 <= chunk.box.x2


def test_the_capacity_model_learns_a_calls_cost_and_the_pixels_cost_from_two_sizes_of_work():
    from privinfer.client.schedule import DEFAULT_CALL_SECONDS, CapacityModel

    capacity = CapacityModel.from_hints({"edge": 1.0})
    for work in (10.0, 10.0, 10.0):  # one size only: the call's cost cannot be told apart yet
        capacity.observe("edge", work, 0.012 + 0.008 * work)
    assert capacity.call_cost("edge") == DEFAULT_CALL_SECONDS
    for work in (5.0, 6.5, 10.0, 5.5):
        capacity.observe("edge", work, 0.012 + 0.008 * work)
    assert capacity.call_cost("edge") == pytest.approx(0.012, abs=1e-6)
    assert capacity.seconds_per_unit["edge"] == pytest.approx(0.008, abs=1e-7)
    assert capacity.noise() == pytest.approx(0.0, abs=1e-6)
    assert capacity.predicted_seconds("edge", 8.0) == pytest.approx(0.076, abs=1e-6)


def test_with_slow_servers_the_partition_splits_on_its_own_and_not_within_the_predictions_error():
    frame = (416, 312)
    roi = (Box(0, 0, *frame),)
    slow = PartitionRequest(*frame, roi, (), speeds=(1.6,) * 4, call_seconds=(0.005,) * 4)  # ~80 ms a frame
    assert len(content_aware(slow)) >= 2
    noisy = PartitionRequest(*frame, roi, (), speeds=(8.0,) * 2, call_seconds=(0.002,) * 2, noise_s=0.05)
    assert len(content_aware(noisy)) == 1  # a 7 ms gain is within the 50 ms the predictions are off by


def test_a_discovery_frame_sent_whole_keeps_the_fastest_servers_own_call_cost():
    from privinfer.client.partition import DISCOVERY

    request = PartitionRequest(416, 312, (Box(0, 0, 416, 312),), (), speeds=(1.0, 3.0), call_seconds=(0.01, 0.02))
    whole = DISCOVERY["whole"](request, [])
    assert (whole.speeds, whole.call_seconds) == ((3.0,), (0.02,))
    assert len(content_aware(whole)) == 1
