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


def _measured(setting, servers_ms: dict[int, float], model: dict) -> dict:
    rows = [
        {"servers": n, "servers_ms": ms, "total_ms": ms + 10, "client_ms": 10.0, "chunks": {str(n): 3},
         "request_bytes": 400_000, "output_bytes": 7200.0 * n, "frame_size": [768, 576]}
        for n, ms in servers_ms.items()
    ]  # fmt: skip
    frames = {"street video": {"no privacy": rows}}
    return {
        "addresses": list(model),
        "budgets": list(setting.budgets),
        "frames": frames,
        "cost_models": {"street video, no privacy": model},
    }


def test_the_check_compares_every_measured_point_and_the_projection_covers_the_grid():
    from privinfer.bench import simulate
    from privinfer.bench.scaling import SETTINGS

    setting = SETTINGS[0]
    addresses = [f"10.77.0.{4 * i + 2}:8001" for i in range(4)]
    model = {a: {"call_s": 0.004, "s_per_mpx": 0.6, "noise_s": 0.0, "fitted": True, "cpu": 0.25, "link": None}
             for a in addresses}  # fmt: skip
    one = simulate_frame(FrameModel(416, 312, 0.01, 7200), [ServerModel(0.004, 0.6)]).servers_s * 1e3
    results = {"settings": {setting.name: _measured(setting, {1: one, 2: 2 * one, 4: one / 2}, model)}}
    points = simulate.check(results)
    assert [p["servers"] for p in points] == [1, 2, 4]
    assert points[0]["error"] == pytest.approx(0.0, abs=1e-9)  # the model's own point
    assert points[1]["error"] < -0.4  # a point twice as slow as the model says is reported as such
    grid = simulate.project(results)["grid"]
    assert len(grid) == len(simulate.RESOLUTIONS) * len(simulate.WORK_SIZES) * len(simulate.UPLINKS) * len(
        simulate.COUNTS
    )
    native_4k = [g for g in grid if g["resolution"] == "3840x2160" and g["work"] == "native"]
    fast = [g for g in native_4k if g["uplink"] == "1000 Mbit/s"]
    assert fast[-1]["speedup"] > fast[1]["speedup"] > 1  # a 4K frame at native size keeps gaining from servers
    assert simulate.markdown(simulate.run_from(results))[0].startswith("Model against 3 measured")
