"""A stream in two overlapping stages: order kept, errors per frame, the same results as one after the other."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from skimage.data import astronaut

from privinfer.errors import ConfigError
from privinfer.pipeline import Pipeline, PipelineConfig
from privinfer.stream import overlapped, sequential


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
