"""The client's half of the split model: both runtimes give the same embeddings and the same
private pipeline; the detection scale option finds the same faces, in frame pixels."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.data import astronaut

from matching import assert_same_detections, pair_detections
from privinfer.client.head import HEAD_TOLERANCE, create_client_head
from privinfer.errors import ConfigError
from privinfer.models.letterbox import letterbox
from privinfer.pipeline import Pipeline, PipelineConfig
from privinfer.types import Treatment


def test_onnxruntime_head_matches_torch_on_real_tiles(nanodet_model, dog_rgb):
    tiles = [letterbox(dog_rgb[y : y + 256, x : x + 256], 256)[0] for x, y in ((0, 0), (200, 150), (400, 300))]
    by_torch = create_client_head("torch", nanodet_model)(tiles).numpy()
    by_onnx = create_client_head("onnxruntime", nanodet_model)(tiles).numpy()
    assert by_onnx.shape == by_torch.shape == (3, *nanodet_model.embedding_shape(256))
    assert np.abs(by_onnx - by_torch).max() <= HEAD_TOLERANCE
    assert by_torch.std() > 0.1  # real features, not an all-zero map that would match trivially


def test_an_unknown_client_runtime_lists_the_valid_ones(nanodet_model):
    with pytest.raises(ConfigError, match="--client-runtime 'tvm' is unknown; choose from: onnxruntime, torch"):
        PipelineConfig(client_runtime="tvm").validate()
    with pytest.raises(ConfigError, match="choose from: onnxruntime, torch"):
        create_client_head("tvm", nanodet_model)


def test_both_client_runtimes_send_feature_patches_and_agree_on_the_detections():
    frame = astronaut()
    results = {}
    for runtime in ("torch", "onnxruntime"):
        config = PipelineConfig(servers=2, sensitive=("faces",), obfuscator="channel-mask", client_runtime=runtime)
        with Pipeline(config) as pipeline:
            results[runtime] = pipeline(frame)
    torch_run, onnx_run = results["torch"], results["onnxruntime"]
    assert [(t.box, t.treatment, t.payload) for t in onnx_run.tiles] == [
        (t.box, t.treatment, t.payload) for t in torch_run.tiles
    ]
    assert any(t.treatment == Treatment.PRIVATIZED and t.payload == "patched" and t.patch_cells for t in onnx_run.tiles)
    assert_same_detections(onnx_run.detections, torch_run.detections, box_tol=1.0, score_tol=0.01)


def test_detection_at_a_smaller_size_finds_the_face_in_frame_pixels():
    frame = np.ascontiguousarray(np.tile(astronaut(), (2, 2, 1)))  # 1024 x 1024, the face twice
    found = {}
    for size in (0, 384):  # 0: native
        config = PipelineConfig(servers=1, sensitive=("faces",), obfuscator="unaltered", detect_size=size)
        with Pipeline(config) as pipeline:
            found[size] = pipeline(frame).sensitive
    assert len(found[384]) == len(found[0]) == 4
    # Paired by overlap: the faces on one row differ by a few pixels in y1, so any sorted order can cross them.
    for small, full in pair_detections(found[384], found[0]):
        assert np.allclose(small.box.as_list(), full.box.as_list(), atol=12), (small.box, full.box)


def test_detect_size_is_checked_up_front():
    with pytest.raises(ConfigError, match="--detect-size 10: must be at least 64 pixels, or 0 for native"):
        PipelineConfig(detect_size=10).validate()
