"""Sensitive detection at the resolution the sent frame needs: the size chosen, the boxes mapped back."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.fakes import NullServers

from privinfer.client.detect.base import DetectorOptions, SensitiveDetector
from privinfer.client.detect.resolution import (
    MIN_FACE_PX,
    bin_labels,
    covered_share,
    detection_factor,
    detection_long_side,
    sent_scale,
    size_bin,
)
from privinfer.errors import ConfigError
from privinfer.pipeline import Pipeline, PipelineConfig
from privinfer.types import Box, Detection


class CentreSquare(SensitiveDetector):
    """Finds one 'face': a square a tenth of its input's width at the input's centre; records the sizes it saw."""

    labels = ("face",)

    def __init__(self) -> None:
        super().__init__(DetectorOptions(mask_scale=1.0))
        self.seen: list[tuple[int, int]] = []

    def detect_raw(self, rgb: np.ndarray) -> list[Detection]:
        height, width = rgb.shape[:2]
        self.seen.append((width, height))
        side = width / 10
        box = Box(width / 2 - side / 2, height / 2 - side / 2, width / 2 + side / 2, height / 2 + side / 2)
        return [Detection(box, "face", 0.9)]


def _run(config: PipelineConfig, frame: np.ndarray) -> tuple[CentreSquare, list[Detection]]:
    detector = CentreSquare()
    with Pipeline(config, pool=NullServers(1), detectors=[detector]) as pipeline:
        sensitive = pipeline(frame).sensitive
    return detector, sensitive


@pytest.mark.parametrize(("width", "height"), [(1920, 1080), (1080, 1920), (3840, 2160)])
def test_detection_runs_at_the_factor_of_the_work_size_and_boxes_come_back_in_frame_pixels(width, height):
    frame = np.zeros((height, width, 3), np.uint8)
    config = PipelineConfig(servers=1, sensitive=(), obfuscator="fill", work_size=416, mask_scale=1.0, hold_frames=0)
    detector, sensitive = _run(config, frame)
    side = detection_long_side(width, height, 416)
    assert side is not None and side < max(width, height)
    assert max(detector.seen[0]) == side
    # The square is a tenth of the frame's width wherever it was found: the same box in frame pixels.
    (found,) = sensitive
    expected = [width * 0.45, height / 2 - width / 20, width * 0.55, height / 2 + width / 20]
    assert np.allclose(found.box.as_list(), expected, atol=max(width, height) / side + 1), found.box


def test_work_size_zero_detects_at_native_resolution():
    frame = np.zeros((1080, 1920, 3), np.uint8)
    config = PipelineConfig(servers=1, sensitive=(), obfuscator="fill", work_size=None, mask_scale=1.0)
    detector, sensitive = _run(config, frame)
    assert detector.seen == [(1920, 1080)]
    assert np.allclose(sensitive[0].box.as_list(), [864, 444, 1056, 636])


def test_an_explicit_detect_size_and_native_override_the_work_size():
    frame = np.zeros((1080, 1920, 3), np.uint8)
    base = {"servers": 1, "sensitive": (), "obfuscator": "fill"}
    assert max(_run(PipelineConfig(**base, detect_size=320), frame)[0].seen[0]) == 320
    assert _run(PipelineConfig(**base, detect_size=0), frame)[0].seen == [(1920, 1080)]


def test_a_frame_smaller_than_the_detection_size_is_detected_as_it_is():
    frame = np.zeros((400, 600, 3), np.uint8)
    config = PipelineConfig(servers=1, sensitive=(), obfuscator="fill")
    assert _run(config, frame)[0].seen == [(600, 400)]


@given(
    work=st.integers(32, 4096),
    min_face=st.floats(0.5, 64),
    width=st.integers(1, 8000),
    height=st.integers(1, 8000),
)
def test_a_face_of_min_face_sent_pixels_is_at_least_the_smallest_found_where_it_is_detected(
    work, min_face, width, height
):
    side = detection_long_side(width, height, work, min_face)
    long_side = max(width, height)
    sent = sent_scale(width, height, work)
    detected = 1.0 if side is None else side / long_side
    # A face of min_face px in the sent frame is min_face / sent px in the frame ...
    at_detection = min_face / sent * detected
    assert side is None or side < long_side
    # ... and at least min_face * factor px where it is detected (more when the frame is not shrunk to be sent).
    assert at_detection >= min(min_face * detection_factor(min_face), min_face / sent) - 1e-6


def test_smaller_min_face_detects_at_a_larger_size():
    assert detection_long_side(3840, 2160, 416, MIN_FACE_PX / 2) > detection_long_side(3840, 2160, 416, MIN_FACE_PX)
    assert detection_long_side(3840, 2160, None) is None


def test_size_bins_and_coverage():
    assert [size_bin(p) for p in (0, 7.99, 8, 15.9, 16, 31, 32, 500)] == [
        "<8", "<8", "8-16", "8-16", "16-32", "16-32", ">=32", ">=32",
    ]  # fmt: skip
    assert bin_labels() == ["<8", "8-16", "16-32", ">=32"]
    face = Box(10, 10, 20, 20)
    assert covered_share(face, Box(0, 0, 100, 100)) == 1.0
    assert covered_share(face, Box(15, 10, 30, 20)) == pytest.approx(0.5)
    assert covered_share(face, Box(30, 30, 40, 40)) == 0.0


def test_min_face_is_checked_up_front():
    with pytest.raises(ConfigError, match="--min-face 0"):
        PipelineConfig(min_face=0).validate()
