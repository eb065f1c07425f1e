"""The discrete-event model of one frame over N servers: its arithmetic, and that it splits as the
partition does."""

from __future__ import annotations

import pytest

from privinfer.testbed.simulator import FrameModel, ServerModel, simulate_frame


def test_one_server_takes_its_call_cost_plus_its_padded_pixels_and_the_answer_over_its_link():
    frame = FrameModel(400, 300, client_s=0.01, answer_bytes=1000)
    server = ServerModel(call_s=0.005, s_per_mpx=0.5, link_bits=8e6)
    simulated = simulate_frame(frame, [server])
    padded = 416 * 320 / 1e6
    request = 400 * 300 * 3 * 8 / 8e6
    expected = request + 0.005 + padded * 0.5 + 1000 * 8 / 8e6
    assert simulated.chunks == 1
    assert simulated.servers_s == pytest.approx(expected)
    assert simulated.total_s == pytest.approx(expected + 0.01)


def test_slow_servers_split_the_frame_and_finish_it_sooner():
    frame = FrameModel(416, 312)
    slow = ServerModel(call_s=0.004, s_per_mpx=0.6)  # ~80 ms for the whole frame
    one, four = simulate_frame(frame, [slow]), simulate_frame(frame, [slow] * 4)
    # Not 4x: each strip of a 416 px frame carries 64 px of context past each cut.
    assert four.chunks == 4 and four.servers_s < 0.7 * one.servers_s
    assert four.request_bytes > one.request_bytes  # the chunks' context is sent twice


def test_a_shared_uplink_queues_the_chunks_one_after_another():
    frame = FrameModel(1280, 720)
    server = ServerModel(call_s=0.0, s_per_mpx=0.01)
    simulated = simulate_frame(frame, [server] * 4, uplink_bits=10e6)
    assert simulated.servers_s >= simulated.request_bytes * 8 / 10e6  # every byte crossed the uplink in turn
    with pytest.raises(ValueError, match="at least one server"):
        simulate_frame(frame, [])
