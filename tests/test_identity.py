"""The face-identity metric: dlib descriptors tell the same face from another person's, the gallery
re-identifies, the evaluation reports it (or fails early with the asset error when it cannot)."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch

from privinfer.data.crops import cut, square_box
from privinfer.errors import AssetMissingError
from privinfer.evaluate.config import EvaluationConfig
from privinfer.evaluate.privacy import PrivacyScores, score
from privinfer.metrics.identity import (
    FaceDescriptors,
    Gallery,
    IdentityReference,
    as_uint8_hwc,
    cosine_pairs,
    reidentification_rate,
)
from privinfer.types import Box

# CenterFace's face boxes on the two sample photos, grown by 1.3 into squares as the corpus crops are.
ASTRONAUT_FACE = Box(168, 40, 283, 196)  # skimage.data.astronaut(), 512 x 512
HOPPER_FACE = Box(146, 97, 386, 365)  # matplotlib's sample grace_hopper.jpg, 512 x 600
CHUNK = 64  # the attack resolution of 128 px chunks


def _chunk(rgb: np.ndarray, face: Box) -> np.ndarray:
    height, width = rgb.shape[:2]
    return cut(rgb, square_box(face, 1.3, width, height), CHUNK)


@pytest.fixture(scope="module")
def faces() -> np.ndarray:
    """Two real faces of two people, as (2, 64, 64, 3) uint8 chunks: astronaut Eileen Collins, Grace Hopper."""
    import matplotlib.cbook
    import skimage.data

    from privinfer.images import read_image

    hopper = read_image(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).pixels
    return np.stack([_chunk(skimage.data.astronaut(), ASTRONAUT_FACE), _chunk(hopper, HOPPER_FACE)])


@pytest.fixture(scope="module")
def describe() -> FaceDescriptors:
    pytest.importorskip("dlib", reason="dlib (pip install dlib-bin==20.0.1.post1) is not importable here")
    return FaceDescriptors.load()


def _blurred(chunks: np.ndarray) -> np.ndarray:
    return np.stack([cv2.GaussianBlur(c, (0, 0), 1.0) for c in chunks])


def test_descriptors_are_128_d_and_layout_free(describe, faces):
    from_uint8 = describe(faces)
    as_float = torch.from_numpy(faces).permute(0, 3, 1, 2).float() / 255
    assert from_uint8.shape == (2, 128)
    np.testing.assert_allclose(describe(as_float), from_uint8, atol=1e-6)
    assert describe(np.zeros((0, CHUNK, CHUNK, 3), np.uint8)).shape == (0, 128)


def test_same_image_scores_one_and_is_reidentified(describe, faces):
    reference = IdentityReference.build(describe, faces, ["collins", "hopper"])
    scores = reference.score(faces)
    assert scores.identity == pytest.approx(1.0, abs=1e-6)
    assert scores.reid_rate == 1.0 and scores.reid_chance == 0.5


def test_another_person_is_less_similar_than_a_blurred_copy(describe, faces):
    originals, blurred = describe(faces), describe(_blurred(faces))
    same = cosine_pairs(originals, blurred)
    other = cosine_pairs(originals, originals[::-1].copy())
    assert np.all(same > 0.92), same
    assert np.all(other < same - 0.03), (other, same)
    # dlib's own rule: same person below 0.6 Euclidean distance, different people above.
    assert np.all(np.linalg.norm(originals - blurred, axis=1) < 0.6)
    assert np.linalg.norm(originals[0] - originals[1]) > 0.6


def test_blurred_faces_are_still_reidentified_but_noise_is_not_them(describe, faces):
    reference = IdentityReference.build(describe, faces, ["collins", "hopper"])
    assert reference.score(_blurred(faces)).reid_rate == 1.0
    # The first reconstruction only (as a white-box attack gives): scored against the first original.
    assert reference.score(_blurred(faces)[:1]).identity > 0.92
    noise = np.random.default_rng(0).integers(0, 256, faces.shape, dtype=np.uint8)
    assert reference.score(noise).identity < reference.score(_blurred(faces)).identity


def test_reid_rate_on_a_toy_gallery():
    # Three persons, two photos each, in 2-d: A near (0, 0), B near (10, 0), C near (0, 10).
    gallery_descriptors = np.array([[0, 1], [0, -1], [10, 1], [10, -1], [1, 10], [-1, 10]], float)
    gallery = Gallery.of(gallery_descriptors, ["a", "a", "b", "b", "c", "c"])
    assert gallery.persons == ("a", "b", "c") and gallery.chance == pytest.approx(1 / 3)
    np.testing.assert_allclose(gallery.descriptors, [[0, 0], [10, 0], [0, 10]])
    queries = np.array([[1, 1], [9, 0], [6, 0], [0, 6]], float)  # the last two are nearer the wrong person
    assert gallery.nearest(queries) == ["a", "b", "b", "c"]
    # Balanced over persons: a is found in 1 of 3 queries, b in 1 of 1 (the plain share would be 2 / 4).
    assert reidentification_rate(gallery, queries, ["a", "b", "a", "a"]) == pytest.approx((1 / 3 + 1) / 2)
    # An attacker who always answers the commonest person gains nothing over chance.
    always_a = np.array([[0, 0]] * 6, float)
    assert reidentification_rate(gallery, always_a, ["a", "a", "a", "a", "b", "c"]) == pytest.approx(gallery.chance)
    with pytest.raises(ValueError, match="one person per descriptor"):
        reidentification_rate(gallery, queries, ["a"])


def test_cosine_pairs():
    a = np.array([[1.0, 0.0], [1.0, 1.0], [2.0, 0.0]])
    b = np.array([[2.0, 0.0], [-1.0, -1.0], [0.0, 3.0]])
    np.testing.assert_allclose(cosine_pairs(a, b), [1.0, -1.0, 0.0], atol=1e-12)
    with pytest.raises(ValueError, match="compares pairs"):
        cosine_pairs(a, b[:2])


def test_chunk_layouts():
    hwc = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    chw = torch.from_numpy(hwc).permute(0, 3, 1, 2).float() / 255
    np.testing.assert_array_equal(as_uint8_hwc(chw), hwc)
    np.testing.assert_array_equal(as_uint8_hwc(chw * 2 - 0.5)[chw.permute(0, 2, 3, 1).numpy() > 0.75], 255)
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        as_uint8_hwc(np.zeros((8, 8, 3)))


def test_privacy_scores_carry_identity_only_when_measured(describe, faces):
    originals = torch.from_numpy(faces).permute(0, 3, 1, 2).float() / 255
    reference = IdentityReference.build(describe, faces, ["collins", "hopper"])
    with_identity = score(originals.flip(0), originals, {}, reference).to_json()
    assert set(with_identity) == {"ssim", "psnr", "sim", "identity", "reid_rate", "reid_chance"}
    assert with_identity["reid_rate"] == 0.0 and with_identity["identity"] < 0.95
    assert set(PrivacyScores(0.5, 20.0, {}).to_json()) == {"ssim", "psnr", "sim"}


def test_missing_model_gives_the_asset_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PRIVINFER_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(AssetMissingError, match="privinfer assets fetch dlib-face-recognition"):
        FaceDescriptors.load()


def test_evaluation_fails_early_without_the_model_unless_quick_or_off(tmp_path, monkeypatch):
    from privinfer.evaluate.run import _face_descriptors, run_evaluation

    monkeypatch.setenv("PRIVINFER_CACHE", str(tmp_path / "empty-cache"))
    config = EvaluationConfig(out_dir=str(tmp_path / "results"), corpus_root=str(tmp_path / "no-corpus"))
    # The asset error comes before the corpus is read (there is none here) or anything is trained.
    with pytest.raises(AssetMissingError, match="dlib-face-recognition"):
        run_evaluation(config, progress=lambda _: None)
    lines: list[str] = []
    assert _face_descriptors(replace(config, quick=True), lines.append) is None
    assert "skipped" in lines[0] and "privinfer assets fetch dlib-face-recognition" in lines[0]
    assert _face_descriptors(replace(config, identity=False), lines.append) is None
