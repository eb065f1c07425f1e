"""A video stream through the pipeline in two overlapping stages.

Stage one reads a frame and prepares it (shrink, sensitive detection: the client's own work);
stage two finishes it (partition, privatize, servers, merge). While frame t is at the servers,
frame t+1 is read and prepared in a thread of its own, so the stream's throughput is bounded by
the slower stage instead of their sum. onnxruntime, OpenCV and the servers' calls release the
GIL, so the two stages do run at once.

A frame's own latency must not grow: prepared too early, frame t+1 would wait for the servers
while the clock runs. So stage one starts frame t+1 only once frame t has gone to stage two, and
then only after the expected slack (stage two's recent duration less stage one's, when positive):
frame t+1 is then ready about when the servers are free. At most one prepared frame waits.

Results come out in input order; a frame whose preparation or finishing raises a
``PrivinferError`` comes out as that error, in its place, and the stream goes on. Any other
exception ends the stream and is raised in the caller's thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
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


def overlapped(
    items: Iterable[Item],
    prepare: Callable[[Item], Prepared],
    finish: Callable[[Prepared], Result],
    pace: bool = True,
) -> Iterator[Outcome[Item, Result]]:
    """``finish(prepare(item))`` for every item, in order, preparing the next item while the
    current one finishes. ``items`` is iterated in the preparing thread (a video is decoded there).

    pace: delay each preparation by the expected slack so that a prepared frame does not wait
        (the frame's latency stays that of the two stages in a row); False prepares as soon as
        the previous frame is handed to ``finish``.
    """
    handed = Queue(maxsize=1)
    turn = threading.Semaphore(1)  # released each time the finishing stage takes a prepared item
    stop = threading.Event()
    first, second = _Estimate(), _Estimate()

    def produce() -> None:
        try:
            for item in items:
                turn.acquire()
                if stop.is_set():
                    return
                if pace and first.seconds is not None and second.seconds is not None:
                    stop.wait(max(0.0, second.seconds - first.seconds))
                started = time.perf_counter()
                try:
                    outcome = Outcome(item, prepare(item))
                except PrivinferError as error:
                    outcome = Outcome(item, None, error)
                first.add(time.perf_counter() - started)
                handed.put(outcome)
        except BaseException as error:  # noqa: BLE001 - handed to the caller's thread, raised there
            handed.put(_Crash(error))
        finally:
            handed.put(_END)

    worker = threading.Thread(target=produce, name="privinfer-prepare", daemon=True)
    worker.start()
    try:
        while (outcome := handed.get()) is not _END:
            if isinstance(outcome, _Crash):
                raise outcome.error
            turn.release()
            if outcome.error is not None:
                yield Outcome(outcome.item, None, outcome.error)
                continue
            started = time.perf_counter()
            try:
                result = finish(outcome.result)
            except PrivinferError as error:
                yield Outcome(outcome.item, None, error)
                continue
            finally:
                second.add(time.perf_counter() - started)
            yield Outcome(outcome.item, result)
    finally:
        stop.set()
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
