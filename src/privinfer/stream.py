"""A video stream through the pipeline in two overlapping stages.

Stage one reads a frame and prepares it (shrink, sensitive detection: the client's own work);
stage two finishes it (partition, privatize, servers, merge). While frame t is at the servers,
frame t+1 is read and prepared in a thread of its own, so the stream's throughput is bounded by
the slower stage instead of their sum. onnxruntime, OpenCV and the servers' calls release the
GIL, so the two stages do run at once.

A frame's own latency must not grow: prepared too early, frame t+1 would wait for the servers
while the clock runs, and on a machine with no core to spare the two stages slow each other down.
So stage one starts frame t+1 only once frame t has gone to stage two, and then after a delay that
a feedback loop sets so that a frame's latency stays that of a frame run alone (``_Pacer``). At
most one prepared frame waits.

Results come out in input order; a frame whose preparation or finishing raises a
``PrivinferError`` comes out as that error, in its place, and the stream goes on. Any other
exception ends the stream and is raised in the caller's thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from queue import Queue
from typing import Generic, TypeVar

from privinfer.errors import PrivinferError

Item = TypeVar("Item")
Prepared = TypeVar("Prepared")
Result = TypeVar("Result")

_SMOOTHING = 0.2  # weight of the latest duration in each stage's running estimate
_END = object()


@dataclass(frozen=True)
class Outcome(Generic[Item, Result]):
    """One input item's outcome: its result, or the error that stopped it."""

    item: Item
    result: Result | None
    error: PrivinferError | None = None


class _Crash:
    def __init__(self, error: BaseException) -> None:
        self.error = error


@dataclass
class _Estimate:
    """A running estimate of a stage's duration in seconds (None until measured)."""

    seconds: float | None = None

    def add(self, seconds: float) -> None:
        self.seconds = seconds if self.seconds is None else (1 - _SMOOTHING) * self.seconds + _SMOOTHING * seconds


@dataclass
class _Pacer:
    """When frame t+1's preparation starts, once frame t has gone to be finished: ``delay`` seconds
    later, or as soon as frame t is finished, whichever comes first.

    A feedback loop keeps a frame's latency (preparation start to result) at that of a frame run
    alone, one after the other: the latency of frames prepared while nothing else ran is the
    target (refreshed every ``refresh`` frames by running one alone); an overlapped frame slower
    than the target by more than ``tolerance`` delays the next preparations by a tenth of the
    finishing stage more (up to not overlapping at all), a faster one by a tenth less. On a machine
    whose cores are free while the servers work, the stages overlap and throughput rises; on one
    whose cores are all busy, overlapping would only slow both stages, and the delay grows until
    they no longer do.
    """

    overlap: bool = True  # False: frames one after the other
    pace: bool = True  # False: no delay at all (prepare as soon as the previous frame is handed on)
    tolerance: float = 0.05
    refresh: int = 30
    alone: _Estimate = field(default_factory=_Estimate)
    delay: float = 0.0
    frames: int = 0

    def wait_for(self, finished: threading.Event) -> None:
        """Block until the next preparation may start (``finished``: no frame is being finished)."""
        if not self.overlap or (self.pace and (self.alone.seconds is None or self.frames % self.refresh == 0)):
            finished.wait()
        elif self.pace and self.delay > 0:
            finished.wait(timeout=self.delay)

    def record(self, latency: float, overlapped: bool, finishing: float | None) -> None:
        self.frames += 1
        if not overlapped:
            self.alone.add(latency)
        elif self.alone.seconds is not None and finishing is not None:
            step = 0.1 * finishing
            if latency > self.alone.seconds * (1 + self.tolerance):
                self.delay = min(self.delay + step, finishing)
            else:
                self.delay = max(0.0, self.delay - step)


def overlapped(
    items: Iterable[Item],
    prepare: Callable[[Item], Prepared],
    finish: Callable[[Prepared], Result],
    pace: bool = True,
    overlap: bool = True,
) -> Iterator[Outcome[Item, Result]]:
    """``finish(prepare(item))`` for every item, in order, preparing the next item while the
    current one finishes. ``items`` is iterated in the preparing thread (a video is decoded there).

    pace: keep each frame's latency at that of a frame run alone (``_Pacer``); False prepares as
        soon as the previous frame is handed to ``finish``.
    overlap: False runs the same two threads one frame after the other (for comparison).
    """
    handed = Queue(maxsize=1)
    turn = threading.Semaphore(1)  # released each time the finishing stage takes a prepared item
    finished = threading.Event()  # set while no item is being finished
    finished.set()
    stop = threading.Event()
    finishing = _Estimate()
    pacer = _Pacer(overlap=overlap, pace=pace)

    def produce() -> None:
        try:
            for item in items:
                turn.acquire()
                pacer.wait_for(finished)
                if stop.is_set():
                    return
                started = time.perf_counter()
                alongside = not finished.is_set()
                try:
                    outcome = Outcome(item, prepare(item))
                except PrivinferError as error:
                    outcome = Outcome(item, None, error)
                handed.put((outcome, started, alongside))
        except BaseException as error:  # noqa: BLE001 - handed to the caller's thread, raised there
            handed.put(_Crash(error))
        finally:
            handed.put(_END)

    worker = threading.Thread(target=produce, name="privinfer-prepare", daemon=True)
    worker.start()
    try:
        while (handed_on := handed.get()) is not _END:
            if isinstance(handed_on, _Crash):
                raise handed_on.error
            outcome, started, alongside = handed_on
            if outcome.error is not None:
                turn.release()
                yield Outcome(outcome.item, None, outcome.error)
                continue
            finished.clear()  # before the turn: the next preparation must see this frame as finishing
            turn.release()
            begun = time.perf_counter()
            try:
                result = finish(outcome.result)
            except PrivinferError as error:
                yield Outcome(outcome.item, None, error)
                continue
            finally:
                now = time.perf_counter()
                finishing.add(now - begun)
                finished.set()
                pacer.record(now - started, alongside, finishing.seconds)
            yield Outcome(outcome.item, result)
    finally:
        stop.set()
        finished.set()  # a producer waiting on it sees the stop
        turn.release()  # a producer waiting for its turn sees the stop
        while worker.is_alive():
            while not handed.empty():
                handed.get_nowait()
            worker.join(timeout=0.05)


def sequential(
    items: Iterable[Item], prepare: Callable[[Item], Prepared], finish: Callable[[Prepared], Result]
) -> Iterator[Outcome[Item, Result]]:
    """The same outcomes as ``overlapped``, one item after the other (for comparison, and for a
    pipeline whose detection needs the previous frame finished)."""
    for item in items:
        try:
            yield Outcome(item, finish(prepare(item)))
        except PrivinferError as error:
            yield Outcome(item, None, error)
