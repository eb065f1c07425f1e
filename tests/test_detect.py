"""Sensitive-object detectors on real images, their options and errors, and the box geometry they share."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib import cbook
from skimage import data

from privinfer import assets
from privinfer.boxes import batched_nms, iou, nms, weighted_nms
from privinfer.client import detect
from privinfer.client.detect import DetectorOptions
from privinfer.client.detect.blazeface import MODELS, anchor_centres
from privinfer.client.detect.plates import neighbour_score
from privinfer.client.detect.text import network_size
from privinfer.errors import AssetMissingError, ConfigError
from privinfer.images import read_image
from privinfer.types import Box

# Hand-checked by eye on the images (x1, y1, x2, y2): hairline/brow to chin, cheek to cheek.
ASTRONAUT_FACE = (180, 80, 272, 178)
GRACE_HOPPER_FACE = (175, 140, 360, 335)
CARPHONE_FACE = (67, 48, 113, 97)  # first frame, 176x144
# skimage.data.page(): the title line "Region-based segmentation".
PAGE_TITLE = (7, 13, 292, 33)
# licenseplate_motion.jpg: the motion-blurred rear plate.
PLATE = (228, 225, 358, 297)

RAW = DetectorOptions(threshold=0.5, mask_scale=1.0)  # boxes as detected, to compare with the boxes above
FACE_DETECTORS = {
    "centerface": ("faces", {}),
    "blazeface-front": ("faces-fast", {}),
    "blazeface-back": ("faces-fast", {"model": "back"}),
    "blazeface-front-plain-nms": ("faces-fast", {"weighted": False}),
}


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return data.astronaut()


@pytest.fixture(scope="module")
def grace_hopper() -> np.ndarray:
    return read_image(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).pixels


@pytest.fixture(scope="module")
def carphone() -> np.ndarray:
    capture = cv2.VideoCapture(str(assets.require("carphone.mp4")))
    ok, frame = capture.read()
    capture.release()
    assert ok, "OpenCV could not decode the first frame of carphone.mp4"
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def page() -> np.ndarray:
    return cv2.cvtColor(data.page(), cv2.COLOR_GRAY2RGB)


@pytest.fixture(scope="module")
def plate_photo() -> np.ndarray:
    return read_image(assets.require("licenseplate_motion.jpg")).pixels


@pytest.fixture(scope="module", params=list(FACE_DETECTORS))
def face_detector(request) -> detect.SensitiveDetector:
    name, kwargs = FACE_DETECTORS[request.param]
    return detect.create(name, RAW, **kwargs)


def _iou(box: Box, truth: tuple[float, ...]) -> float:
    return float(iou(np.array(box.as_list()), np.array([truth]))[0])


def _covered(box: Box, truth: tuple[float, ...]) -> float:
    """Fraction of the truth box inside `box`."""
    x1, y1, x2, y2 = truth
    inner = Box(max(box.x1, x1), max(box.y1, y1), min(box.x2, x2), min(box.y2, y2))
    return inner.area / Box(*truth).area


@pytest.mark.parametrize(
    ("image", "truth"),
    [("astronaut", ASTRONAUT_FACE), ("grace_hopper", GRACE_HOPPER_FACE), ("carphone", CARPHONE_FACE)],
)
def test_one_face_found_where_it_is(face_detector, image, truth, request):
    rgb = request.getfixturevalue(image)
    found = face_detector(rgb)
    assert len(found) == 1, found
    assert found[0].label == "face"
    assert _iou(found[0].box, truth) >= 0.5, found[0]


def test_no_face_on_a_printed_page(face_detector, page):
    assert face_detector(page) == []


def test_centerface_at_a_fixed_smaller_input_still_finds_the_face(astronaut):
    found = detect.create("faces", RAW, input_size=(320, 320))(astronaut)
    assert len(found) == 1
    assert _iou(found[0].box, ASTRONAUT_FACE) >= 0.5


def test_text_lines_found_on_a_printed_page(page):
    found = detect.create("text", DetectorOptions(mask_scale=1.0))(page)
    height, width = page.shape[:2]
    # Seven lines of print (title, five of body, one of code); a neighbouring pair may merge.
    assert len(found) >= 6
    assert all(
        d.label == "text" and 0 <= d.box.x1 < d.box.x2 <= width and 0 <= d.box.y1 < d.box.y2 <= height for d in found
    )
    title = max(found, key=lambda d: _iou(d.box, PAGE_TITLE))
    assert _iou(title.box, PAGE_TITLE) >= 0.5
    assert _covered(title.box, PAGE_TITLE) >= 0.95


def test_no_text_on_a_face_video_frame(carphone):
    assert detect.create("text")(carphone) == []


def test_plate_cascade_on_a_motion_blurred_plate(plate_photo):
    # Weak recall, as documented: at the default pyramid step the cascade finds nothing here.
    assert detect.create("plates")(plate_photo) == []
    # A finer step finds a loose box around the trunk that holds the whole plate (IoU with it ~0.3).
    found = detect.create("plates", DetectorOptions(mask_scale=1.0), scale_factor=1.02)(plate_photo)
    assert any(_covered(d.box, PLATE) == 1.0 for d in found), found
    assert all(d.label == "plate" for d in found)


def test_threshold_keeps_fewer_detections_all_at_or_above_it(grace_hopper):
    for key, (name, kwargs) in [*FACE_DETECTORS.items(), ("text", ("text", {})), ("plates", ("plates", {}))]:
        low = detect.create(name, DetectorOptions(threshold=0.2), **kwargs)(grace_hopper)
        high = detect.create(name, DetectorOptions(threshold=0.8), **kwargs)(grace_hopper)
        assert all(d.score >= 0.8 for d in high), key
        assert len(high) <= len(low), key
        if key != "blazeface-front" and key != "blazeface-back":
            # Without blending, a higher threshold only removes boxes. (BlazeFace's blend, like
            # MediaPipe's, averages only the candidates above the threshold, so its boxes move.)
            assert {d.box for d in high} <= {d.box for d in low}, key
    # The face scores about 0.9: a threshold above that removes it.
    assert detect.create("faces", DetectorOptions(threshold=0.99))(grace_hopper) == []


def test_mask_scale_grows_boxes_about_their_centre(astronaut):
    raw = detect.create("faces", RAW)
    grown = detect.create("faces", DetectorOptions(threshold=0.5, mask_scale=1.3))
    (before,), (after,) = raw(astronaut), grown(astronaut)
    assert after.box.width == pytest.approx(1.3 * before.box.width)
    assert after.box.height == pytest.approx(1.3 * before.box.height)
    assert (after.box.x1 + after.box.x2) / 2 == pytest.approx((before.box.x1 + before.box.x2) / 2)
    assert after.score == before.score


def test_mask_scale_clips_to_the_image(carphone):
    # The face is about 46x49 px in a 176x144 frame: grown fourfold it overflows every side.
    (face,) = detect.create("faces", DetectorOptions(mask_scale=4.0))(carphone)
    assert face.box == Box(0.0, 0.0, 176.0, 144.0)


def test_unknown_detector_names_the_valid_ones():
    with pytest.raises(ConfigError) as error:
        detect.create("licence-plates")
    message = str(error.value)
    assert "licence-plates" in message
    for name in ("faces", "faces-fast", "plates", "text"):
        assert name in message


def test_unknown_blazeface_model_is_a_config_error():
    with pytest.raises(ConfigError, match="front, back"):
        detect.create("faces-fast", model="side")


@pytest.mark.parametrize("name", ["faces", "faces-fast", "text"])
def test_missing_model_asset_says_how_to_fetch_it(name, tmp_path, monkeypatch):
    monkeypatch.setenv("PRIVINFER_CACHE", str(tmp_path))
    with pytest.raises(AssetMissingError, match="privinfer assets fetch"):
        detect.create(name)


# --- pure parts -------------------------------------------------------------------------------


def test_blazeface_anchors_match_the_output_layout():
    for model in MODELS.values():
        anchors = anchor_centres(model.size, model.strides)
        assert anchors.shape == (896, 2)
        assert anchors[0] == pytest.approx([0.5 / 16, 0.5 / 16])
        assert anchors[1] == pytest.approx(anchors[0])  # two anchors per cell on the fine grid
        assert anchors[512] == pytest.approx([0.5 / 8, 0.5 / 8])  # then six per cell on the coarse one


def test_text_network_size_is_a_multiple_of_32_within_the_limit():
    assert network_size(384, 191, 960) == (384, 192)
    assert network_size(4000, 3000, 960) == (960, 736)
    assert network_size(10, 10, 960) == (32, 32)


def test_neighbour_score_is_one_half_at_opencv_default():
    assert neighbour_score(np.array([0, 3, 30])) == pytest.approx([0.0, 0.5, 30 / 33])


def test_iou_of_known_boxes():
    assert iou(np.array([0, 0, 10, 10]), np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]])) == pytest.approx(
        [1.0, 1 / 3, 0.0]
    )


def test_weighted_nms_blends_a_cluster_by_score():
    boxes = np.array([[0, 0, 10, 10], [2, 0, 12, 10], [50, 50, 60, 60]], dtype=float)
    blended, scores = weighted_nms(boxes, np.array([0.9, 0.3, 0.5]), 0.3)
    assert scores == pytest.approx([0.9, 0.5])
    assert blended[0] == pytest.approx([0.5, 0, 10.5, 10])  # (0.9 * 0 + 0.3 * 2) / 1.2 = 0.5
    assert blended[1] == pytest.approx([50, 50, 60, 60])


_boxes = st.lists(
    st.tuples(st.floats(0, 100), st.floats(0, 100), st.floats(1, 50), st.floats(1, 50), st.floats(0, 1)),
    min_size=0,
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(_boxes, st.floats(0.05, 0.95))
def test_nms_keeps_no_overlapping_pair_and_drops_only_what_a_better_box_covers(rows, threshold):
    boxes = np.array([[x, y, x + w, y + h] for x, y, w, h, _ in rows]).reshape(-1, 4)
    scores = np.array([s for *_, s in rows])
    keep = nms(boxes, scores, threshold)
    assert len(set(keep.tolist())) == len(keep)
    for i, a in enumerate(keep):
        assert np.all(iou(boxes[a], boxes[keep[i + 1 :]]) <= threshold)
    for dropped in set(range(len(boxes))) - set(keep.tolist()):
        overlaps = iou(boxes[dropped], boxes[keep]) > threshold
        assert np.any(overlaps & (scores[keep] >= scores[dropped]))


@settings(max_examples=200, deadline=None)
@given(_boxes, st.lists(st.integers(0, 3), min_size=30, max_size=30), st.floats(0.05, 0.95))
def test_batched_nms_keeps_what_torchvision_keeps(rows, labels, threshold):
    """The task model's decoder keeps, per class, what torchvision's batched_nms keeps, in its order
    (it no longer imports torchvision for it: a second of start-up)."""
    import torch
    from torchvision.ops import batched_nms as torchvision_batched_nms

    boxes = np.array([[x, y, x + w, y + h] for x, y, w, h, _ in rows], np.float32).reshape(-1, 4)
    scores = np.array([s for *_, s in rows], np.float32)
    classes = np.array(labels[: len(rows)], np.int64)
    want = torchvision_batched_nms(
        torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(classes), threshold
    )
    got = batched_nms(boxes, scores, classes, threshold)
    if len(np.unique(scores)) == len(scores):  # with tied scores either order of the tie is right
        assert got.tolist() == want.tolist()
    else:
        assert sorted(got.tolist()) == sorted(want.tolist()) or len(got) == len(want)


def test_persons_and_screens_come_from_the_task_model():
    from privinfer import assets
    from privinfer.client.detect import create
    from privinfer.images import read_image

    person = read_image(assets.require("person.jpg")).pixels
    found = create("persons")(person)
    assert found and all(d.label == "person" for d in found)
    assert create("screens").labels == ("tv", "laptop", "cell phone")


def test_head_box_is_the_top_of_a_standing_person_and_more_of_an_upper_body():
    from privinfer.client.detect.task_classes import head_box

    assert head_box(Box(10, 20, 40, 120)) == Box(10, 20, 40, 50)  # 30% of a tall box
    assert head_box(Box(0, 0, 100, 110)) == Box(0, 0, 100, 60)  # 60% of the width of a wide one
    assert head_box(Box(0, 0, 100, 40)) == Box(0, 0, 100, 40)  # never more than the box


def test_heads_marks_the_head_of_a_person_whose_face_is_turned_away():
    person = read_image(assets.require("person.jpg")).pixels  # her back is to the camera: no face to find
    assert detect.create("faces")(person) == []

    (body,) = detect.create("persons", DetectorOptions(mask_scale=1.0))(person)
    (head,) = detect.create("heads", DetectorOptions(mask_scale=1.0))(person)

    assert head.label == "head" and head.box.y1 == body.box.y1 and head.box.height < 0.35 * body.box.height


def test_int8_centerface_finds_the_faces_float32_finds_where_they_are():
    images = [data.astronaut(), np.ascontiguousarray(np.tile(data.astronaut(), (2, 2, 1)))]
    found = {
        precision: [detect.create("faces", RAW, precision=precision)(rgb) for rgb in images]
        for precision in ("int8", "float32")
    }
    assert sum(map(len, found["float32"])) == 5
    for int8, float32 in zip(found["int8"], found["float32"], strict=True):
        assert len(int8) == len(float32)
        for face in float32:
            assert max(iou(np.array(face.box.as_list()), np.array([d.box.as_list() for d in int8]))) > 0.8


def test_an_unknown_precision_is_refused_by_name():
    with pytest.raises(ConfigError, match="unknown precision 'int4'"):
        detect.create("faces", precision="int4")
