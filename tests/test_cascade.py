"""The person-guided face cascade: full resolution where nothing is known, the previous frame's
persons' heads searched at full accuracy on the frames that continue a stream."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from privinfer.client import detect
from privinfer.client.detect import DetectorOptions
from privinfer.client.detect.cascade import HEAD, CascadeFaceDetector
from privinfer.pipeline import Pipeline, PipelineConfig
from privinfer.types import Box, Detection

ASTRONAUT_FACE = (180, 80, 272, 178)  # in skimage's 512x512 astronaut, as in test_detect.py
AT = (240, 300)  # where she stands in the 640x480 frame (x, y)


def _astronaut_at(shrink: float) -> tuple[np.ndarray, Box]:
    """A 640x480 grey frame with the astronaut pasted at ``shrink`` of her size, and her face's box in it."""
    person = cv2.resize(data.astronaut(), None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
    frame = np.full((480, 640, 3), 127, np.uint8)
    height, width = person.shape[:2]
    frame[AT[1] : AT[1] + height, AT[0] : AT[0] + width] = person
    x1, y1, x2, y2 = (v * shrink for v in ASTRONAUT_FACE)
    return frame, Box(AT[0] + x1, AT[1] + y1, AT[0] + x2, AT[1] + y2)


@pytest.fixture(scope="module")
def small_astronaut() -> tuple[np.ndarray, Box]:
    """Her face about 17 px: too small for the shrunk whole frame (4 px there)."""
    return _astronaut_at(0.18)


def _covers(box: Box, face: Box, share: float = 0.9) -> bool:
    width = min(box.x2, face.x2) - max(box.x1, face.x1)
    height = min(box.y2, face.y2) - max(box.y1, face.y1)
    return width > 0 and height > 0 and width * height >= share * face.area


def test_a_small_face_on_a_person_found_in_the_previous_frame_is_sensitive_on_the_next(small_astronaut):
    frame, face = small_astronaut
    # Nothing held (neither by the pipeline nor the detector's hold of discovered faces): what
    # frame 1 treats as sensitive is what its own pass found.
    cascade = CascadeFaceDetector(DetectorOptions(), hold_discovered=False)
    with Pipeline(PipelineConfig(servers=1, hold_frames=0), detectors=[cascade]) as pipeline:
        first = pipeline(frame, 0)
        assert cascade.last_pass == "full"  # a stream's first frame knows nothing
        assert any(d.label == "person" for d in first.detections), "the servers must find her"
        second = pipeline(frame, 1)
        assert cascade.last_pass == "cascade"
        assert any(_covers(d.box, face) for d in second.sensitive), f"{face} not covered by {second.sensitive}"
        # The shrunk whole frame alone misses her face: the head canvas found it.
        alone = CascadeFaceDetector(DetectorOptions(), coarse_size=cascade.coarse_size)
        assert not any(_covers(d.box, face) for d in alone(frame, known=[]))


def test_the_head_canvas_finds_a_face_on_a_known_person_and_only_there():
    frame, face = _astronaut_at(0.3)  # her face about 28 px, her box about 154 px: searched on the canvas
    person = Detection(Box(AT[0], AT[1], AT[0] + 154, 480), "person", 0.8)
    canvas_only = CascadeFaceDetector(DetectorOptions(threshold=0.2, mask_scale=1.3), coarse_size=0, small_head=0)
    found = canvas_only(frame, known=[person])
    assert canvas_only.last_pass == "cascade" and len(canvas_only.last_canvas.placements) == 1
    assert any(d.label == "face" and _covers(d.box, face) for d in found)
    assert canvas_only(frame, known=[]) == [], "with no person known, nothing is searched"


def test_discovery_frames_run_full_resolution(small_astronaut):
    frame, _face = small_astronaut
    cut = frame // 4  # a scene cut (the lights go down): nothing the last frame found says anything about this one
    with Pipeline.from_config(servers=1, sensitive=("faces-cascade",), discover_every=2) as pipeline:
        (cascade,) = pipeline.detectors
        passes = []
        for index, rgb in enumerate([frame, frame, frame, frame, cut, cut]):
            pipeline(rgb, index)
            passes.append(cascade.last_pass)
        pipeline.reset()  # unrelated images: the next one is a photo
        pipeline(frame, 0)
        passes.append(cascade.last_pass)
    # first frame, two continuing, the periodic refresh (after 2 continuing), the cut, one continuing, a photo
    assert passes == ["full", "cascade", "cascade", "full", "full", "cascade", "full"]


def test_a_photo_finds_what_full_resolution_finds():
    rgb = data.astronaut()
    options = DetectorOptions(threshold=0.2, mask_scale=1.3)
    assert detect.create("faces-cascade", options)(rgb) == detect.create("faces", options)(rgb)


def test_small_heads_are_sensitive_without_a_face_search():
    rgb = np.full((480, 640, 3), 127, np.uint8)  # nothing to find: only the rule can mark the head
    cascade = CascadeFaceDetector(DetectorOptions(threshold=0.2, mask_scale=1.0), small_head=24, person_score=0.1)
    small = Detection(Box(100, 100, 130, 200), "person", 0.15)  # expected head about 14 px
    large = Detection(Box(300, 50, 500, 450), "person", 0.9)  # expected head about 57 px: searched, not assumed
    found = cascade(rgb, known=[small, large])
    assert [d.label for d in found] == [HEAD]
    head = found[0].box
    assert head.x1 <= 100 and head.x2 >= 130 and head.y1 <= 100 and 120 <= head.y2 < 200


def test_a_canvas_as_large_as_the_frame_runs_full_resolution_instead():
    rgb = np.full((240, 320, 3), 127, np.uint8)
    cascade = CascadeFaceDetector(DetectorOptions(), head_px=200, max_upscale=4)
    cascade(rgb, known=[Detection(Box(0, 0, 320, 240), "person", 0.9)])
    assert cascade.last_pass == "full"


def test_persons_below_the_task_threshold_are_decoded_only_when_asked_and_nothing_else_changes(nanodet_model):
    from privinfer import assets
    from privinfer.images import read_image
    from privinfer.models import nanodet

    x, _ = nanodet.prepare(read_image(assets.require("person.jpg")).pixels)
    raw = nanodet_model(x)
    size = tuple(x.shape[2:])
    plain_boxes, plain_scores, plain_classes = nanodet.decode(raw, size, nanodet.DecodeOptions())[0]
    boxes, scores, classes = nanodet.decode(raw, size, nanodet.DecodeOptions(person_score_threshold=0.05))[0]
    confident = scores > 0.35
    np.testing.assert_allclose(boxes[confident], plain_boxes)
    np.testing.assert_array_equal(classes[confident], plain_classes)
    np.testing.assert_allclose(scores[confident], plain_scores)
    weak = ~confident
    assert weak.any(), "person.jpg should give weak person candidates for this test to mean anything"
    assert (classes[weak] == nanodet.PERSON_CLASS).all() and (scores[weak] > 0.05).all()
