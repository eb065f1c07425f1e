"""The server's repair: it rewrites only the regions' cells and a ring around them, from what the
server receives, and the client sends no feature value for it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from privinfer.errors import ConfigError
from privinfer.models import nanodet
from privinfer.models.repair import (
    RegionRepair,
    RepairedPixelsToRaw,
    RepairShape,
    cell_mask,
    load_repair,
    save_repair,
)
from privinfer.train.repair_training import region_anchor_weights


def _randomised(shape: RepairShape) -> RegionRepair:
    torch.manual_seed(0)
    repair = RegionRepair(shape)
    for parameter in repair.parameters():
        torch.nn.init.normal_(parameter, std=0.1)
    return repair.eval()


@pytest.mark.parametrize("ring", [0, 1, 2])
def test_the_repair_rewrites_the_regions_cells_and_its_ring_and_nothing_else(ring):
    z = torch.randn(1, 128, 12, 16)
    mask = cell_mask(torch.tensor([5 * 16 + 6, 5 * 16 + 7, 6 * 16 + 6], dtype=torch.int32), 12, 16)
    with torch.no_grad():
        changed = (_randomised(RepairShape(ring=ring))(z, mask) != z).any(dim=1)[0]
    rows, cols = torch.nonzero(changed, as_tuple=True)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (5 - ring, 6 + ring, 6 - ring, 7 + ring)


def test_an_untrained_repair_is_the_identity():
    z = torch.randn(2, 128, 8, 8)
    mask = torch.zeros(2, 1, 8, 8)
    mask[:, :, 2:5, 3:6] = 1
    assert torch.equal(RegionRepair()(z, mask), z)


def test_cell_mask_marks_exactly_the_cells_named():
    mask = cell_mask(torch.tensor([0, 9, 11], dtype=torch.int32), 3, 4)
    assert mask.shape == (1, 1, 3, 4)
    assert torch.nonzero(mask[0, 0]).tolist() == [[0, 0], [2, 1], [2, 3]]


def test_weights_round_trip_and_a_missing_file_is_one_clear_error(tmp_path):
    repair = _randomised(RepairShape(hidden=8, dilations=(1, 2), ring=2))
    loaded = load_repair(save_repair(repair, tmp_path / "r.pt", steps=3))
    assert loaded.shape == repair.shape
    z, mask = torch.randn(1, 128, 6, 6), torch.ones(1, 1, 6, 6)
    with torch.no_grad():
        assert torch.equal(loaded(z, mask), repair(z, mask))
    with pytest.raises(ConfigError, match="does not exist.*privinfer train --target repair"):
        load_repair(tmp_path / "missing.pt")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises((ConfigError, Exception)):
        load_repair(tmp_path / "bad.pt")


def test_the_repaired_graph_is_head_repair_tail_on_the_filled_pixels(nanodet_model, dog_rgb):
    """With an identity repair the graph is the full model on the filled chunk; the shipped one
    changes the outputs, and only through the region (a chunk without region cells is untouched)."""
    chunk = torch.from_numpy(np.ascontiguousarray(dog_rgb[None, :96, :128]))
    cells = torch.tensor([[2 * 16 + 3, 2 * 16 + 4]], dtype=torch.int32)
    full = nanodet.PixelsToRaw(nanodet_model)
    with torch.no_grad():
        identity = RepairedPixelsToRaw(nanodet_model, RegionRepair())(chunk, cells)
        assert torch.equal(identity, full(chunk))
        shipped = RepairedPixelsToRaw(nanodet_model)
        assert not torch.equal(shipped(chunk, cells), full(chunk))
        assert torch.equal(shipped(chunk, torch.zeros(1, 0, dtype=torch.int32)), full(chunk))


def test_anchors_whose_teacher_box_overlaps_a_region_weigh_more():
    side = 64
    anchors = nanodet.anchor_count(side, side)
    teacher = torch.full((anchors, nanodet.RAW_WIDTH), -10.0)
    teacher[:, : nanodet.NUM_CLASSES] = 0.0
    teacher[:, nanodet.NUM_CLASSES :: nanodet.REG_BINS] = 10.0  # every side's distance: bin 0 (a point box)
    teacher[0, 0] = 0.9  # the first stride-8 anchor (centre 4, 4) sees a person
    teacher[anchors - 1, 0] = 0.9  # the last stride-32 anchor (centre 48, 48) sees one too
    weights = region_anchor_weights(teacher, [(0, 0, 16, 16)], side, extra=4.0)
    assert weights[0] == 5.0 and weights[anchors - 1] == 1.0 and (weights[1:-1] == 1.0).all()
