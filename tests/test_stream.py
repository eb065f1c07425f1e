"""A stream in two overlapping stages: order kept, errors per frame, the same results as one after the other."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from skimage.data import astronaut

from fakes import NullServers
from privinfer.errors import ConfigError
from privinfer.pipeline import Pipeline, PipelineConfig
from privinfer.stream import _Pacer, overlapped, sequential


def _prepare(item: int) -> int:
    if item % 5 == 3:
        raise ConfigError(f"item {item} cannot be prepared")
    return item * 10


def _finish(prepared: int) -> str:
    if prepared == 70:
        raise ConfigError("70 cannot be finished")
    return f"done {prepared}"


@pytest.mark.parametrize("run", [overlapped, sequential])
def test_outcomes_come_in_input_order_with_each_error_in_its_place(run):
    outcomes = list(run(range(12), _prepare, _finish))
    assert [o.item for o in outcomes] == list(range(12))
    for outcome in outcomes:
        if outcome.item % 5 == 3:
            assert isinstance(outcome.error, ConfigError) and "cannot be prepared" in str(outcome.error)
        elif outcome.item == 7:
            assert isinstance(outcome.error, ConfigError) and "cannot be finished" in str(outcome.error)
        else:
            assert outcome.error is None and outcome.result == f"done {outcome.item * 10}"


def test_the_next_item_is_prepared_while_the_current_one_finishes():
    prepared_during_finish = []
    finishing = threading.Event()
    seen = []

    def prepare(item: int) -> int:
        prepared_during_finish.append(finishing.is_set())
        return item

    def finish(item: int) -> int:
        finishing.set()
        seen.append(item)
        # The next item is prepared meanwhile: wait (bounded) until it has been.
        for _ in range(200):
            if len(prepared_during_finish) > item + 1 or item == 4:
                break
            threading.Event().wait(0.01)
        finishing.clear()
        return item

    assert [o.result for o in overlapped(range(5), prepare, finish, pace=False)] == list(range(5))
    assert any(prepared_during_finish[1:]), prepared_during_finish
    assert seen == list(range(5))


def test_an_unexpected_exception_ends_the_stream_in_the_callers_thread():
    def items():
        yield 1
        raise RuntimeError("the camera fell off")

    with pytest.raises(RuntimeError, match="camera fell off"):
        list(overlapped(items(), lambda i: i, lambda i: i))


def test_closing_the_stream_early_stops_the_preparing_thread():
    produced = []

    def items():
        for i in range(1000):
            produced.append(i)
            yield i

    stream = overlapped(items(), lambda i: i, lambda i: i)
    assert next(stream).result == 0
    stream.close()
    assert not any(t.name == "privinfer-prepare" and t.is_alive() for t in threading.enumerate())
    assert len(produced) < 10  # at most a frame or two ahead


def test_an_overlapped_video_gives_the_same_results_as_one_frame_after_the_other():
    # A stream whose face moves: the astronaut, shifted a little each frame, beside a dark strip.
    frames = [(i, np.ascontiguousarray(np.roll(np.pad(astronaut(), ((0, 0), (0, 128), (0, 0))), 6 * i, axis=1)))
              for i in range(8)]  # fmt: skip
    config = PipelineConfig(servers=1, learn_capacities=False, obfuscator="fill")
    runs = {}
    for overlap in (True, False):
        with Pipeline(config) as pipeline:
            runs[overlap] = list(pipeline.stream(iter(frames), overlap=overlap))
    for together, alone in zip(runs[True], runs[False], strict=True):
        assert together.item[0] == alone.item[0]
        assert together.error is None and alone.error is None
        a, b = together.result, alone.result
        assert a.frame == b.frame
        assert _boxes(a.sensitive) == _boxes(b.sensitive)
        assert _boxes(a.detections) == _boxes(b.detections)
        assert a.timings_ms["wait"] >= 0
    assert all(o.result.sensitive for o in runs[True])  # the face, on every frame


def _boxes(detections) -> list[tuple]:
    return sorted((d.label, *np.round(d.box.as_list(), 3), round(d.score, 4)) for d in detections)


class _Waits:
    """Stands in for the 'nothing is being finished' event: records how the pacer waits on it."""

    def __init__(self) -> None:
        self.calls: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.calls.append(timeout)
        return True


def test_the_pacer_runs_frames_alone_until_it_knows_their_latency_then_overlaps():
    pacer = _Pacer(refresh=4)
    event = _Waits()
    pacer.wait_for(event)
    assert event.calls == [None], "the first frame runs alone: its latency is the target"
    pacer.record(0.100, overlapped=False, finishing=0.060)
    pacer.wait_for(event)
    assert event.calls == [None], "then no delay at all"
    for _ in range(3):
        pacer.record(0.100, overlapped=True, finishing=0.060)
    pacer.wait_for(event)
    assert event.calls[-1] is None, "every refresh-th frame runs alone again"


def test_the_pacer_delays_overlap_while_it_slows_frames_and_lifts_the_delay_when_it_does_not():
    pacer = _Pacer()
    pacer.record(0.100, overlapped=False, finishing=0.060)
    for _ in range(20):  # overlapped frames slower than frames alone: the stages slow each other down
        pacer.record(0.150, overlapped=True, finishing=0.060)
    assert pacer.delay == pytest.approx(0.060), "at most the finishing stage: then no overlap at all"
    for _ in range(20):  # and when overlapped frames are as fast as frames alone
        pacer.record(0.101, overlapped=True, finishing=0.060)
    assert pacer.delay == 0.0
    sequential = _Pacer(overlap=False)
    sequential.record(0.1, overlapped=False, finishing=0.06)
    event = _Waits()
    sequential.wait_for(event)
    assert event.calls == [None], "one after the other: always wait for the previous frame"


def test_a_stream_overlaps_only_when_its_servers_are_other_machines():
    """Local servers share the client's cores: overlapping there slowed frames (measured, see
    ``Pipeline.overlaps_streams``), so only remote servers get the overlap."""
    with Pipeline(PipelineConfig(servers=1)) as local:
        assert not local.overlaps_streams
    config = PipelineConfig(servers=("edge-1:8001", "edge-2:8001"))
    with Pipeline(config, pool=NullServers(2)) as remote:  # stand-ins answer for the two addresses
        assert remote.overlaps_streams
