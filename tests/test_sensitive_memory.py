"""Held sensitive boxes: kept for hold_frames after they were last seen, growing to follow motion."""

from __future__ import annotations

from privinfer.client.sensitive_memory import SensitiveMemory
from privinfer.types import Box, Detection


def _face(x1, y1, x2, y2) -> Detection:
    return Detection(Box(x1, y1, x2, y2), "face", 0.9)


def test_a_missed_face_is_held_growing_then_dropped_after_hold_frames():
    memory = SensitiveMemory(hold_frames=2)
    memory.update(0, [_face(100, 100, 110, 110)])

    (held,) = memory.update(1, [])
    assert held.box.width > 10 and abs((held.box.x1 + held.box.x2) / 2 - 105) < 1e-9
    assert len(memory.update(2, [])) == 1
    assert memory.update(3, []) == []


def test_a_pixel_margin_lets_a_small_held_box_follow_a_walker():
    relative = SensitiveMemory(hold_frames=3)
    margin = SensitiveMemory(hold_frames=3, margin_px_per_frame=4.0)
    for memory in (relative, margin):
        memory.update(0, [_face(100, 100, 110, 110)])

    (small,) = relative.update(2, [])
    (wide,) = margin.update(2, [])
    assert small.box.x2 - 110 < 1  # 5% a frame of 10 px: half a pixel a side
    assert wide.box.as_list() == [92.0, 92.0, 118.0, 118.0]  # 2 frames x 4 px a side


def test_a_fresh_detection_replaces_the_held_box_it_overlaps():
    memory = SensitiveMemory(hold_frames=5)
    memory.update(0, [_face(100, 100, 110, 110)])

    found = memory.update(1, [_face(102, 100, 112, 110)])

    assert [d.box for d in found] == [Box(102, 100, 112, 110)]
