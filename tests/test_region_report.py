"""The region report's front: worst case over attacks, the floor as the best context-only attack."""

from __future__ import annotations

import pytest

from privinfer.evaluate.region_report import floor_ssim, front


def _scores(ssim, verified=0.0, reid=0.05):
    return {"ssim": ssim, "verified": verified, "verified_chance": 0.0, "reid_rate": reid, "reid_chance": 0.05}


def _utility(**maps):
    rows = {k: {key: {"map": v, "map50": v} for key in ("with_faces", "person_with_faces", "all")}
            for k, v in maps.items()}  # fmt: skip
    return {"photos": 2, "with_faces": 2, "servers": 2, "obfuscators": rows}


SUMMARY = {
    "floor": {"strong": _scores(0.20)},
    "unaltered": {"strong": _scores(0.70, 0.8, 0.7), "weak": _scores(0.60), "context_only": False},
    "token": {"strong": _scores(0.22), "weak": _scores(0.19), "context_only": True},
    "mask": {"strong": _scores(0.40, 0.1), "inversion": _scores(0.45, 0.2, 0.3), "context_only": False},
    "frame_utility": _utility(fill=0.7, unaltered=0.96, token=0.9, mask=0.88, mosaic=0.66),
}


def test_the_floor_is_the_best_attack_on_a_view_that_carries_nothing_of_the_face():
    assert floor_ssim(SUMMARY) == (0.22, "token (strong)")


def test_the_front_takes_each_obfuscators_worst_attack_and_measures_gaps_from_the_floor():
    rows = front(SUMMARY)
    assert rows["fill"]["ssim"] == 0.22 and rows["fill"]["ssim_gap"] == 0.0
    assert rows["unaltered"]["ssim_gap"] == 1.0
    assert rows["mask"]["ssim"] == 0.45 and rows["mask"]["ssim_attack"] == "inversion"
    assert rows["mask"]["ssim_gap"] == pytest.approx((0.45 - 0.22) / (0.70 - 0.22))
    assert rows["mask"]["verified"] == 0.2 and rows["mask"]["reid_rate"] == 0.3
    assert rows["token"]["map_degradation_pct"] == pytest.approx(10.0)
    assert rows["mosaic"]["ssim"] is None and rows["mosaic"]["ssim_attack"] == "not attacked"
    assert rows["mosaic"]["map_degradation_pct"] == pytest.approx(34.0)
