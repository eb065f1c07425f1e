"""A filled region reads nothing of itself: changing its pixels changes no byte that leaves the client."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fakes import NullServers
from privinfer.client.fill import available_fills, fill_regions
from privinfer.errors import ConfigError
from privinfer.pipeline import Pipeline, PipelineConfig
from privinfer.serve.recording import RecordingPool
from privinfer.types import Box
from test_privacy_audit import FixedBoxes

regions_strategy = st.lists(
    st.tuples(st.integers(0, 150), st.integers(0, 110), st.integers(1, 90), st.integers(1, 90)), min_size=1, max_size=3
)


def _regions(drawn, width=160, height=120):
    return [(x, y, min(width, x + w), min(height, y + h)) for x, y, w, h in drawn]


def _inside(regions, shape):
    mask = np.zeros(shape[:2], bool)
    for x1, y1, x2, y2 in regions:
        mask[y1:y2, x1:x2] = True
    return mask


@pytest.mark.parametrize("fill", available_fills())
@settings(max_examples=25, deadline=None)
@given(drawn=regions_strategy, seed=st.integers(0, 2**16))
def test_a_fill_reads_no_pixel_of_any_region_and_keeps_every_other(fill, drawn, seed):
    rng = np.random.default_rng(seed)
    regions = _regions(drawn)
    pixels = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    inside = _inside(regions, pixels.shape)
    other = pixels.copy()
    other[inside] = rng.integers(0, 256, (int(inside.sum()), 3), dtype=np.uint8)
    first, second = fill_regions(pixels, regions, fill), fill_regions(other, regions, fill)
    assert first.tobytes() == second.tobytes()
    assert np.array_equal(first[~inside], pixels[~inside])


def test_an_inpainting_continues_the_surroundings_and_black_does_not():
    pixels = np.full((96, 96, 3), 180, np.uint8)
    region = [(30, 30, 70, 70)]
    painted = fill_regions(pixels, region, "telea")[30:70, 30:70].astype(int)
    assert np.abs(painted - 180).max() == 0  # held within the colours around it
    assert fill_regions(pixels, region, "black")[30:70, 30:70].max() == 0


def test_an_unknown_fill_is_refused_by_name():
    with pytest.raises(ConfigError, match="unknown fill 'grey'.*black"):
        fill_regions(np.zeros((8, 8, 3), np.uint8), [], "grey")
    assert any("--fill 'grey'" in p for p in _problems(PipelineConfig(fill="grey")))


def _problems(config):
    from privinfer.pipeline import _config_problems

    return list(_config_problems(config))


@pytest.mark.parametrize("obfuscator", ["fill", "token", "repair"])
@pytest.mark.parametrize("fill", ["telea", "black"])
def test_changing_a_face_changes_no_byte_on_the_wire(obfuscator, fill):
    """The client path end to end, twice, with different pixels inside the sensitive boxes: every
    payload that leaves is the same, byte for byte."""
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    boxes = [Box(40, 30, 90, 95), Box(200, 100, 260, 170)]
    other = frame.copy()
    for box in boxes:
        x1, y1, x2, y2 = (int(v) for v in box.as_list())
        other[y1:y2, x1:x2] = rng.integers(0, 256, (y2 - y1, x2 - x1, 3), dtype=np.uint8)
    sent = []
    for pixels in (frame, other):
        config = PipelineConfig(
            servers=2, obfuscator=obfuscator, fill=fill, sensitive=(), hold_frames=0, learn_capacities=False
        )
        detector = FixedBoxes()
        detector.boxes = boxes
        pool = RecordingPool(NullServers(2))
        with Pipeline(config, pool=pool, detectors=[detector]) as pipeline:
            pipeline(pixels)
        payloads = sorted((p for _, p in pool.sent), key=lambda p: p.tile_index)
        sent.append([(p.kind, *(t.tobytes() for t in p.tensors().values())) for p in payloads])
    assert any(kind != "pixels" for kind, *_ in sent[0])
    assert sent[0] == sent[1]


def test_an_evaluation_entry_sets_the_pipeline_fill_and_a_filling_obfuscator_takes_it_too():
    from privinfer.evaluate.config import obfuscator_entry, utility_entry

    assert utility_entry("token telea", {"obfuscator": "token", "fill": "telea"}) == ("token", {}, {"fill": "telea"})
    assert obfuscator_entry("fill black", {"obfuscator": "fill", "fill": "black"}) == ("fill", {"fill": "black"})
    assert utility_entry("repair", {"mask_scale": 1.6}) == ("repair", {}, {"mask_scale": 1.6})


def test_each_obfuscator_fills_with_what_it_was_trained_on_unless_told():
    from privinfer.obfuscate import create_obfuscator

    assert create_obfuscator("token").preferred_fill == "black"
    assert create_obfuscator("fill").preferred_fill == "telea"
    assert create_obfuscator("repair").preferred_fill == "black"  # what the shipped repair was trained on
    with Pipeline(PipelineConfig(servers=1, obfuscator="token", sensitive=())) as pipeline:
        assert pipeline.fill == "black"
    with Pipeline(PipelineConfig(servers=1, obfuscator="token", fill="ns", sensitive=())) as pipeline:
        assert pipeline.fill == "ns"
