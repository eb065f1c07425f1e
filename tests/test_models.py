"""The split NanoDet: exact split identity, real detections on dog.jpg, any input size, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from privinfer import assets
from privinfer.errors import AssetMissingError, ConfigError
from privinfer.models import nanodet
from privinfer.types import Box


def iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a.x2, b.x2) - max(a.x1, b.x1))
    iy = max(0.0, min(a.y2, b.y2) - max(a.y1, b.y1))
    inter = ix * iy
    return inter / (a.area + b.area - inter)


@pytest.mark.parametrize("cut", ["stride4", "stride8"])
@pytest.mark.parametrize("size", [128, 416])
def test_tail_of_head_equals_full_exactly(nanodet_model, cut, size):
    nanodet_model.set_cut(cut)
    try:
        x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            z = nanodet_model.head(x)
            assert z.shape[1:] == nanodet_model.embedding_shape(size)
            assert torch.equal(nanodet_model.tail(z), nanodet_model.full(x))
    finally:
        nanodet_model.set_cut(nanodet.DEFAULT_CUT)


def test_default_cut_is_stride8_stage_with_128_channels(nanodet_model):
    assert nanodet_model.embedding_shape(416) == (128, 52, 52)


def test_batch_equals_one_by_one(nanodet_model):
    # The converted graph fixed batch 1 in its reshapes; a batch must not scramble anchors.
    x = torch.randn(3, 3, 160, 160, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        together = nanodet_model(x)
        alone = torch.cat([nanodet_model(x[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)


def test_differentiable_end_to_end(nanodet_model):
    x = torch.randn(1, 3, 64, 64, requires_grad=True)
    nanodet_model(x)[..., :80].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in nanodet_model.parameters())


def test_dog_photo_finds_dog_bicycle_truck(nanodet_model, dog_rgb):
    # Hand-checked boxes on darknet's 768x576 dog.jpg.
    expected = {
        "dog": Box(128, 220, 320, 540),
        "bicycle": Box(120, 120, 570, 450),
        "truck": Box(468, 82, 690, 170),
    }
    found = nanodet.detect(nanodet_model, dog_rgb, 416, nanodet.DecodeOptions(score_threshold=0.3))
    for label, box in expected.items():
        matches = [d for d in found if d.label == label and iou(d.box, box) >= 0.5]
        assert matches, f"no {label} near {box}; got {[(d.label, d.box) for d in found]}"
    assert all(0 <= d.box.x1 < d.box.x2 <= 768 and 0 <= d.box.y1 < d.box.y2 <= 576 for d in found)


@pytest.mark.parametrize("shape", [(576, 768), (100, 300), (300, 100), (5, 7)])
@pytest.mark.parametrize("size", [128, 224, 416])
def test_any_image_size(nanodet_model, shape, size):
    rgb = np.random.default_rng(0).integers(0, 255, (*shape, 3), dtype=np.uint8)
    detections = nanodet.detect(nanodet_model, rgb, size)
    for d in detections:
        assert 0 <= d.box.x1 <= d.box.x2 <= shape[1] and 0 <= d.box.y1 <= d.box.y2 <= shape[0]


def test_letterbox_round_trip():
    from privinfer.models.letterbox import letterbox

    rgb = np.zeros((300, 600, 3), np.uint8)
    canvas, transform = letterbox(rgb, 416)
    assert canvas.shape == (416, 416, 3)
    boxes = np.array([[0, 0, 600, 300]], np.float32)
    forward = boxes * transform.scale + [transform.pad_x, transform.pad_y, transform.pad_x, transform.pad_y]
    np.testing.assert_allclose(transform.to_image(forward), boxes, atol=1e-3)


def test_bad_cut_and_size_are_clear_errors(nanodet_model):
    with pytest.raises(ConfigError, match="unknown cut point 'nowhere'.*stride8"):
        nanodet_model.set_cut("nowhere")
    with pytest.raises(ConfigError, match="multiple of 32"):
        nanodet.prepare(np.zeros((10, 10, 3), np.uint8), 100)


def test_missing_model_asset_names_the_fetch_command(monkeypatch, tmp_path):
    monkeypatch.setenv("PRIVINFER_CACHE", str(tmp_path))
    nanodet._compiled_graph.cache_clear()
    try:
        with pytest.raises(AssetMissingError, match="nanodet-graph.*privinfer assets fetch nanodet-graph"):
            nanodet.load_nanodet()
    finally:
        monkeypatch.undo()
        nanodet._compiled_graph.cache_clear()


def test_a_saved_calibration_gives_the_same_model_and_a_broken_one_is_run_again():
    """Start-up reads the graph's calibration (shapes, resize ratios) from the cache instead of
    running the graph once; built either way, the model computes the same numbers."""
    from privinfer.models.graph_module import Calibration, GraphModule
    from privinfer.models.tfjs_graph import read_tfjs_graph

    graph = read_tfjs_graph(assets.require("nanodet-graph"), assets.require("nanodet-weights").parent)
    shape = (1, 3, nanodet.REFERENCE_SIZE, nanodet.REFERENCE_SIZE)
    ran = GraphModule(graph, shape)
    saved = Calibration.from_json(ran.calibration.to_json())
    assert saved == ran.calibration and saved.ratios, "the resize ratios survive the file"
    read = GraphModule(graph, shape, saved)
    assert read.calibration == ran.calibration
    x = torch.randn(1, 3, 320, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(read(x), ran(x), strict=True))
    # One that does not fit the graph (a resize step missing) is not used: the graph is run instead.
    partial = Calibration(saved.shapes, dict(list(saved.ratios.items())[1:]))
    assert GraphModule(graph, shape, partial).calibration == ran.calibration


def test_start_up_saves_the_calibration_in_the_cache_and_reads_it_back(monkeypatch, tmp_path):
    from privinfer.models.graph_module import Calibration

    assert nanodet._calibration_file().parent.parent == assets.cache_dir()
    file = tmp_path / "calibration" / "nanodet.json"  # the cache's own file is left alone
    monkeypatch.setattr(nanodet, "_calibration_file", lambda: file)
    nanodet._compiled_graph.cache_clear()
    try:
        first = nanodet._compiled_graph()
        assert file.is_file()
        file.write_text("not json")  # broken: ignored, run again, rewritten
        nanodet._compiled_graph.cache_clear()
        assert nanodet._compiled_graph().calibration == first.calibration
        assert Calibration.from_json(file.read_text()) == first.calibration
    finally:
        nanodet._compiled_graph.cache_clear()


def test_models_loaded_to_be_used_as_they_are_share_one_copy_of_the_weights():
    first, second = (nanodet.load_nanodet("cpu", share_weights=True) for _ in range(2))
    own = nanodet.load_nanodet("cpu")  # a model someone may train keeps weights of its own
    pairs = list(zip(first.parameters(), second.parameters(), own.parameters(), strict=True))
    assert pairs and all(a.data_ptr() == b.data_ptr() != c.data_ptr() for a, b, c in pairs)
    assert all(torch.equal(a, c) and not a.requires_grad for a, _, c in pairs)
    first.set_cut("stride4")  # the rest of the model is each one's own
    assert second.cut != first.cut
