"""The merge of chunk detections: it fuses only fragments of an object cut by a chunk border.

Synthetic boxes check the rules exactly; real frames check the one claim that depends on the model:
an object cut across two chunks comes back as one box that matches the uncut detection.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privinfer.boxes import iou
from privinfer.client.merge import ChunkDetections, merge_chunks
from privinfer.client.partition import PartitionOptions
from privinfer.models import nanodet
from privinfer.types import Box, Detection

FRAME = Box(0, 0, 416, 320)

boxes = st.tuples(st.floats(0, 400), st.floats(0, 300), st.floats(1, 200), st.floats(1, 200)).map(
    lambda t: Box(t[0], t[1], min(416, t[0] + t[2]), min(320, t[1] + t[3]))
)
detections = st.lists(
    st.tuples(boxes, st.sampled_from(["person", "dog"]), st.floats(0.05, 1.0)).map(lambda t: Detection(*t)),
    max_size=15,
)


def _iou(a: Box, b: Box) -> float:
    return float(iou(np.array(a.as_list()), np.array([b.as_list()]))[0])


@settings(max_examples=300, deadline=None)
@given(detections)
def test_one_chunk_returns_exactly_the_models_detections(found):
    merged = merge_chunks([ChunkDetections(FRAME, FRAME, found)])
    assert sorted(merged, key=lambda d: -d.score) == sorted(found, key=lambda d: -d.score)


@settings(max_examples=300, deadline=None)
@given(detections, st.integers(1, 12).map(lambda k: 32 * k))
def test_detections_of_one_chunk_are_never_fused_or_dropped_against_each_other(found, cut):
    """Whatever the other chunk sends, a chunk's own detections that it answers for all stay, unmoved."""
    left, right = Box(0, 0, cut + 32, 320), Box(cut - 32, 0, 416, 320)
    inside = [d for d in found if d.box.x2 <= cut and d.box.x2 < left.x2 - 8]  # whole in the left chunk's core
    merged = merge_chunks(
        [ChunkDetections(left, Box(0, 0, cut, 320), inside), ChunkDetections(right, Box(cut, 0, 416, 320), [])]
    )
    assert sorted(merged, key=lambda d: (-d.score, d.box.x1)) == sorted(inside, key=lambda d: (-d.score, d.box.x1))


def test_two_touching_people_in_one_chunk_stay_two():
    sofa = [Detection(Box(10 + 100 * i, 40, 120 + 100 * i, 300), "person", 0.8 - 0.1 * i) for i in range(4)]
    assert len(merge_chunks([ChunkDetections(FRAME, FRAME, sofa)])) == 4
    # Split over two chunks, each person whole in the chunk holding its centre: still four, unchanged.
    left, right = Box(0, 0, 256, 320), Box(192, 0, 416, 320)
    chunks = [
        ChunkDetections(left, Box(0, 0, 224, 320), [d for d in sofa if d.box.x2 <= 256]),
        ChunkDetections(right, Box(224, 0, 416, 320), [d for d in sofa if d.box.x1 >= 192]),
    ]
    assert sorted(merge_chunks(chunks), key=lambda d: d.box.x1) == sofa


@pytest.mark.parametrize("overlap", [0, 32, 64])
def test_an_object_cut_across_two_chunks_comes_back_as_one_box(overlap):
    dog = Box(150, 50, 300, 150)
    cut = 224
    left, right = Box(0, 0, cut + overlap / 2, 320), Box(cut - overlap / 2, 0, 416, 320)
    halves = [
        ChunkDetections(left, Box(0, 0, cut, 320), [Detection(Box(151, 52, left.x2, 149), "dog", 0.7)]),
        ChunkDetections(right, Box(cut, 0, 416, 320), [Detection(Box(right.x1, 49, 298, 151), "dog", 0.5)]),
    ]
    merged = merge_chunks(halves)
    assert len(merged) == 1 and merged[0].label == "dog" and merged[0].score == 0.7
    assert _iou(merged[0].box, dog) >= 0.9


def test_fragments_of_different_classes_or_not_lined_up_are_not_fused():
    left, right = Box(0, 0, 224, 320), Box(224, 0, 416, 320)
    core_l, core_r = left, right
    cat = [ChunkDetections(left, core_l, [Detection(Box(150, 50, 224, 150), "dog", 0.7)]),
           ChunkDetections(right, core_r, [Detection(Box(224, 50, 300, 150), "cat", 0.6)])]  # fmt: skip
    assert len(merge_chunks(cat)) == 2
    apart = [ChunkDetections(left, core_l, [Detection(Box(150, 10, 224, 60), "person", 0.7)]),
             ChunkDetections(right, core_r, [Detection(Box(224, 200, 300, 300), "person", 0.6)])]  # fmt: skip
    assert len(merge_chunks(apart)) == 2


def test_a_whole_object_seen_by_two_overlapping_chunks_is_kept_once_not_grown():
    left, right = Box(0, 0, 288, 320), Box(160, 0, 416, 320)
    person = Box(200, 40, 250, 200)  # inside the overlap, centre in the right core
    chunks = [
        ChunkDetections(left, Box(0, 0, 224, 320), [Detection(Box(199, 41, 251, 199), "person", 0.9)]),
        ChunkDetections(right, Box(224, 0, 416, 320), [Detection(person, "person", 0.6)]),
    ]
    merged = merge_chunks(chunks)
    assert merged == [Detection(person, "person", 0.6)], "the owning chunk's box, neither grown nor doubled"


@settings(max_examples=200, deadline=None)
@given(detections, detections, st.integers(2, 10).map(lambda k: 32 * k))
def test_the_merge_never_grows_a_box_but_to_join_two_fragments(a, b, cut):
    left, right = Box(0, 0, cut + 32, 320), Box(cut - 32, 0, 416, 320)
    chunks = [ChunkDetections(left, Box(0, 0, cut, 320), a), ChunkDetections(right, Box(cut, 0, 416, 320), b)]
    given_boxes = {d.box for d in a + b}
    for merged in merge_chunks(chunks):
        if merged.box not in given_boxes:  # a union: its parts touch the two chunks' inner borders
            assert merged.box.x1 < right.x1 + 4 and merged.box.x2 > left.x2 - 4
    assert len(merge_chunks(chunks)) <= len(a) + len(b)


def test_a_real_object_cut_by_two_real_chunks_comes_back_like_the_uncut_detection(dog_rgb):
    """The dog of darknet's dog.jpg, cut through its middle: each chunk sees half of it, and the
    chunks overlap by the partition's context past the cut on both sides (2 x 32 px)."""
    model = nanodet.load_nanodet()
    work, _ = nanodet.fit_long_side(dog_rgb, 416)
    options = nanodet.DecodeOptions(score_threshold=0.3)

    def detect(box: Box) -> list[Detection]:
        x1, y1, x2, y2 = (int(v) for v in box.as_list())
        pixels = work[y1:y2, x1:x2]
        raw = model(nanodet.normalise(nanodet.pad_pixels(pixels)))
        found = nanodet.decode(raw.detach(), (nanodet.padded_side(y2 - y1), nanodet.padded_side(x2 - x1)), options)[0]
        return [
            Detection(Box(b[0] + x1, b[1] + y1, min(b[2] + x1, x2), min(b[3] + y1, y2)), nanodet.COCO_CLASSES[c], s)
            for b, s, c in zip(*found, strict=True)
        ]

    whole_box = Box(0, 0, work.shape[1], work.shape[0])
    dog = max((d for d in detect(whole_box) if d.label == "dog"), key=lambda d: d.score)
    middle = 32 * round((dog.box.x1 + dog.box.x2) / 2 / 32)
    context = PartitionOptions().edge_context
    left, right = Box(0, 0, middle + context, work.shape[0]), Box(middle - context, 0, work.shape[1], work.shape[0])
    chunks = [
        ChunkDetections(left, Box(0, 0, middle, work.shape[0]), detect(left)),
        ChunkDetections(right, Box(middle, 0, work.shape[1], work.shape[0]), detect(right)),
    ]
    assert all(any(d.label == "dog" for d in c.detections) for c in chunks), "each chunk sees part of the dog"
    dogs = [d for d in merge_chunks(chunks) if d.label == "dog" and _iou(d.box, dog.box) > 0.3]
    assert len(dogs) == 1, dogs
    assert _iou(dogs[0].box, dog.box) >= 0.9
