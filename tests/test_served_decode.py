"""Servers answer with detections: the decoding inside the served graphs gives the client exactly
what decoding the raw outputs on the client gave (matched detection to detection, not by
position), in a few kB."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from privinfer import assets
from privinfer.errors import ConfigError
from privinfer.images import read_image
from privinfer.models import nanodet
from privinfer.models.served_decode import CLASS_COLUMN, SCORE_COLUMN, ServedDecode
from privinfer.serve.runtime import create_runtime

BOX_TOLERANCE_PX = 1e-3
SCORE_TOLERANCE = 1e-4
ANSWER_LIMIT_BYTES = 10_000
# A person's weaker score a face cascade asks for: the lowest threshold a client decodes with.
OPTIONS = (nanodet.DecodeOptions(), nanodet.DecodeOptions(person_score_threshold=0.1))


@pytest.fixture(scope="module")
def runtimes():
    return {name: create_runtime(name) for name in ("torch", "onnxruntime")}


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    return [read_image(assets.require(name)).pixels for name in ("dog.jpg", "person.jpg")]


def _client_side(raw: torch.Tensor, height: int, width: int, options: nanodet.DecodeOptions):
    """Today's decoding on the client: the raw outputs of a chunk padded to height x width."""
    return nanodet.decode(raw, (height, width), options)[0]


def _from_answer(answer: np.ndarray, options: nanodet.DecodeOptions):
    found = torch.from_numpy(answer)
    return nanodet.select(found[:, :4], found[:, SCORE_COLUMN], found[:, CLASS_COLUMN].long(), options)


def _assert_same(got, want) -> None:
    """Every detection of ``want`` matched by one of ``got`` (same class, nearest box), none left over."""
    got_boxes, got_scores, got_classes = got
    want_boxes, want_scores, want_classes = want
    assert len(got_boxes) == len(want_boxes)
    unmatched = set(range(len(got_boxes)))
    for box, score, cls in zip(want_boxes, want_scores, want_classes, strict=True):
        same_class = [i for i in unmatched if got_classes[i] == cls]
        assert same_class, f"no detection of class {cls} left to match"
        best = min(same_class, key=lambda i: np.abs(got_boxes[i] - box).max())
        assert np.abs(got_boxes[best] - box).max() <= BOX_TOLERANCE_PX
        assert abs(got_scores[best] - score) <= SCORE_TOLERANCE
        unmatched.remove(best)


def _chunks(rgb: np.ndarray) -> list[np.ndarray]:
    """The photo at its working size, and chunks of it of sizes that are and are not multiples of 32."""
    work, _ = nanodet.fit_long_side(rgb, 416)
    height, width = work.shape[:2]
    return [work, work[: height // 2 + 13, : width // 2 + 7], work[32:, 96:], work[5 : height - 3, 64 : width - 30]]


@pytest.mark.parametrize("name", ["torch", "onnxruntime"])
def test_full_model_answers_what_client_side_decoding_gave(runtimes, photos, nanodet_model, name):
    to_raw = nanodet.PixelsToRaw(nanodet_model)
    compared = 0
    for rgb in photos:
        for chunk in _chunks(rgb):
            pixels = np.ascontiguousarray(chunk)[None]
            answer = runtimes[name].full(pixels)
            assert answer.nbytes <= ANSWER_LIMIT_BYTES
            with torch.no_grad():
                raw = to_raw(torch.from_numpy(pixels))
            height, width = (nanodet.padded_side(s) for s in chunk.shape[:2])
            for options in OPTIONS:
                want = _client_side(raw, height, width, options)
                _assert_same(_from_answer(answer[0], options), want)
                compared += len(want[0])
    assert compared > 20  # real detections were compared, not empty answers


def test_a_batch_answers_each_chunk_alone_and_pads_with_rows_under_the_floor(runtimes, photos):
    work, _ = nanodet.fit_long_side(photos[0], 416)
    first, blank = work[:256, :256], np.zeros((256, 256, 3), np.uint8)
    runtime = runtimes["onnxruntime"]
    both = runtime.full(np.stack([first, blank]))
    alone = runtime.full(first[None])
    assert both.shape[1] == alone.shape[1]  # the longer answer sets K
    options = nanodet.DecodeOptions()
    _assert_same(_from_answer(both[0], options), _from_answer(alone[0], options))
    assert (both[1, :, SCORE_COLUMN] <= ServedDecode().score_floor).all()  # nothing on black: padding rows


@pytest.mark.parametrize("name", ["torch", "onnxruntime"])
def test_tail_and_patched_models_answer_what_client_side_decoding_gave(runtimes, photos, nanodet_model, name):
    work, _ = nanodet.fit_long_side(photos[1], 416)
    chunk = np.ascontiguousarray(work[:, : work.shape[1] - 9])
    height, width = (nanodet.padded_side(s) for s in chunk.shape[:2])
    x = torch.from_numpy(nanodet.normalise_array(nanodet.pad_pixels(chunk)[None]))
    rng = np.random.default_rng(3)
    cells = np.array([[5, 6, 7, 60]], np.int32)
    sent = np.array([[0, 9, 100]], np.int32)
    values = rng.standard_normal((1, 4, 3)).astype(np.float32)
    with torch.no_grad():
        z = nanodet_model.head(x)
        raw_tail = nanodet_model.tail(z)
        raw_patched = nanodet.PatchedPixelsToRaw(nanodet_model)(
            *(torch.from_numpy(a) for a in (chunk[None], cells, sent, values))
        )
    tail_answer = runtimes[name].tail(z.numpy())
    patched_answer = runtimes[name].patched(chunk[None], cells, sent, values)
    for answer, raw in ((tail_answer, raw_tail), (patched_answer, raw_patched)):
        assert answer.nbytes <= ANSWER_LIMIT_BYTES
        want = _client_side(raw, height, width, nanodet.DecodeOptions())
        assert len(want[0]) > 0
        _assert_same(_from_answer(answer[0], nanodet.DecodeOptions()), want)


def test_the_floor_and_top_k_are_kept_and_checked():
    with pytest.raises(ConfigError, match="score floor"):
        ServedDecode(score_floor=1.5)
    with pytest.raises(ConfigError, match="top-k"):
        ServedDecode(top_k=0)


def test_a_lower_top_k_keeps_the_best_candidates(photos):
    runtime = create_runtime("torch", _options(ServedDecode(score_floor=0.0, top_k=7)))
    work, _ = nanodet.fit_long_side(photos[0], 416)
    answer = runtime.full(np.ascontiguousarray(work)[None])[0]
    assert answer.shape == (7, 6)
    assert (np.diff(answer[:, SCORE_COLUMN]) <= 0).all()  # the best first


def _options(decode: ServedDecode):
    from privinfer.serve.runtime import RuntimeOptions

    return RuntimeOptions(decode=decode)
