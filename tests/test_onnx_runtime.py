"""The ONNX export of the server models and the runtime registry: onnxruntime agrees with torch."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from privinfer.errors import ConfigError, ModelExportError
from privinfer.models import nanodet
from privinfer.models.letterbox import letterbox
from privinfer.serve import onnx_export
from privinfer.serve.runtime import (
    RUNTIME_TOLERANCE,
    RUNTIMES,
    EmbeddingGeometry,
    OnnxRuntime,
    RuntimeOptions,
    TorchRuntime,
    create_runtime,
)


@pytest.fixture(scope="module")
def runtimes():
    return create_runtime("onnxruntime"), create_runtime("torch")


def _tiles(rgb: np.ndarray, size: int) -> np.ndarray:
    """Two letterboxed tiles of a real photo, as the pipeline sends them."""
    crops = [rgb[:size, :size], rgb[150 : 150 + size, 250 : 250 + size * 3 // 4]]
    return np.stack([letterbox(crop, size)[0] for crop in crops])


@pytest.mark.parametrize("size", [256, 320])
def test_runtimes_agree_on_real_tiles(runtimes, dog_rgb, nanodet_model, size):
    onnx, eager = runtimes
    tiles = _tiles(dog_rgb, size)
    full_onnx, full_torch = onnx.full(tiles), eager.full(tiles)
    assert full_onnx.shape[0] == full_torch.shape[0] == 2 and full_onnx.shape[2] == full_torch.shape[2] == 6
    _assert_same_answers(full_onnx, full_torch)
    with torch.no_grad():
        embedding = nanodet_model.head(torch.from_numpy(nanodet.normalise_array(tiles))).numpy().astype(np.float16)
    tail_onnx, tail_torch = onnx.tail(embedding), eager.tail(embedding)
    assert _assert_same_answers(tail_onnx, tail_torch) > 0


@pytest.mark.parametrize("shape", [(200, 301), (312, 416), (96, 64)])
def test_runtimes_agree_on_unpadded_chunks_and_feature_patches(runtimes, dog_rgb, nanodet_model, shape):
    """Chunks of any size (padded inside the model), and the patched model (the head on the filled
    chunk, a patch written into some cells, the tail): both runtimes give the same outputs."""
    onnx, eager = runtimes
    height, width = shape
    chunk = np.ascontiguousarray(dog_rgb[None, :height, 40 : 40 + width])
    _assert_same_answers(onnx.full(chunk), eager.full(chunk))
    filled = chunk.copy()
    filled[:, 16:48, 8:40] = 0
    columns = nanodet.padded_side(width) // 8
    cells = np.array([[r * columns + c for r in range(2, 6) for c in range(1, 5)]], np.int32)
    with torch.no_grad():
        z = nanodet_model.head(nanodet.normalise(nanodet.pad_pixels(chunk[0]))).numpy()
    sent = np.array([[0, 3, 17, 100, 127]], np.int32)
    own = z[0].reshape(128, -1)[sent[0]][:, cells[0]].T[None].astype(np.float16)  # (1, K, k)
    patched_onnx, patched_torch = (r.patched(filled, cells, sent, own) for r in (onnx, eager))
    _assert_same_answers(patched_onnx, patched_torch)
    unpatched = eager.full(filled)
    reaches = unpatched.shape != patched_torch.shape or float(np.abs(patched_torch - unpatched).max()) > 1e-3
    assert reaches, "the patch reaches the tail"
    repaired_onnx, repaired_torch = (r.repaired(filled, cells) for r in (onnx, eager))
    _assert_same_answers(repaired_onnx, repaired_torch)


def _assert_same_answers(a: np.ndarray, b: np.ndarray, threshold: float = 0.1) -> int:
    """Two runtimes' answers (N, K, 6) hold the same detections above ``threshold``: matched by class
    and nearest box, boxes within 1e-2 px and scores within ``RUNTIME_TOLERANCE``. Returns how many."""
    options = nanodet.DecodeOptions(score_threshold=threshold)
    compared = 0
    for one, other in zip(a, b, strict=True):
        picked = [_selected(x, options) for x in (one, other)]
        (boxes_a, scores_a, classes_a), (boxes_b, scores_b, classes_b) = picked
        assert sorted(classes_a.tolist()) == sorted(classes_b.tolist())
        for box, score, cls in zip(boxes_a, scores_a, classes_a, strict=True):
            same = np.flatnonzero(classes_b == cls)
            best = same[np.abs(boxes_b[same] - box).max(axis=1).argmin()]
            assert np.abs(boxes_b[best] - box).max() < 1e-2 and abs(scores_b[best] - score) < RUNTIME_TOLERANCE
        compared += len(boxes_a)
    return compared


def _selected(answer: np.ndarray, options: nanodet.DecodeOptions):
    found = torch.from_numpy(answer)
    return nanodet.select(found[:, :4], found[:, 4], found[:, 5].long(), options)


def test_numpy_normalisation_equals_torch_bit_for_bit(dog_rgb):
    tiles = _tiles(dog_rgb, 256)
    assert np.array_equal(nanodet.normalise_array(tiles), nanodet.normalise(list(tiles)).numpy())


def test_export_is_cached_and_carries_the_cut_geometry(runtimes):
    path = onnx_export.export_onnx("tail")
    stamp = path.stat().st_mtime_ns
    assert onnx_export.export_onnx("tail") == path and path.stat().st_mtime_ns == stamp
    assert path.parent == onnx_export.onnx_path("full").parent and path.name.startswith("nanodet-tail-stride8-")
    onnx, eager = runtimes
    assert onnx.geometry == eager.geometry == EmbeddingGeometry(channels=128, stride=8)


def test_unknown_names_are_config_errors():
    with pytest.raises(ConfigError, match="unknown model runtime 'tensorrt'.*onnxruntime, torch"):
        create_runtime("tensorrt")
    with pytest.raises(ConfigError, match="no ONNX export for model part 'neck'.*full, tail, patched, repaired, head"):
        onnx_export.export_onnx("neck")
    with pytest.raises(ConfigError, match="CPU only, not on device 'cuda'"):
        OnnxRuntime(RuntimeOptions(device="cuda"))


def test_a_runtime_that_cannot_run_falls_back_to_eager_torch(monkeypatch, caplog):
    def broken(options: RuntimeOptions):
        raise ModelExportError("exporting NanoDet 'tail' failed: simulated")

    monkeypatch.setitem(RUNTIMES, "onnxruntime", broken)
    with caplog.at_level(logging.WARNING, logger="privinfer.serve.runtime"):
        runtime = create_runtime("onnxruntime")
    assert isinstance(runtime, TorchRuntime)
    assert "falling back to eager torch" in caplog.text and "simulated" in caplog.text
