"""Sending payloads to servers by the schedule and collecting their detections, surviving failures.

A batch whose server fails (error, timeout, gone) is sent again to the remaining servers, with
the very same payloads: a retry can never change a tile's treatment (a privatized tile is never
re-sent raw). When no server is left the frame fails with an explicit error.

A failed server is not dropped for good. `ServerHealth` keeps it out for a back-off (2 s, doubled
by each further failure in a row, at most 30 s); then it is probed (``ServerPool.probe``: for a
remote server a readiness call with a short deadline) and, if it answers, given tiles again, its
capacity estimate restarted from its hint. The probe is made by the first frame that finds the
back-off over, so that frame waits for it: at most one probe deadline per server that comes due.

A server that refuses a batch because it is busy (``ServerBusyCallError``: it has as many requests
in flight as it admits) has not failed: it is neither dropped nor kept out, and its batch goes at
once to the admitted servers that have not refused this frame. When every admitted server has
refused, dispatch waits briefly (the server's hint, 10 ms doubling up to 200 ms) and tries them
all again, for at most ``timeout_s`` of waiting in all; then the frame fails with
`AllServersBusyError`. No tile is dropped on the way: each gets its output or the frame its error.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from privinfer.client.schedule import CapacityModel, Task, assign, task_for
from privinfer.errors import ConfigError, PrivinferError, ServerBusyCallError
from privinfer.serve import Payload, ServerPool, WorkBatch


class NoServerLeftError(PrivinferError):
    """Every server failed for this frame, or is kept out after failing."""


class AllServersBusyError(NoServerLeftError):
    """Every admitted server kept refusing this frame's work as busy for the whole wait allowed."""


BUSY_FIRST_WAIT_S = 0.01  # first wait when every server is busy; doubles while they stay busy
BUSY_MAX_WAIT_S = 0.2  # a busy server frees a slot within about one model call: never wait longer


@dataclass(frozen=True)
class TileOutput:
    detections: np.ndarray  # (K, 6): x1, y1, x2, y2 in the chunk's pixels, score, class id
    server: str

    @property
    def nbytes(self) -> int:
        """The answer's size as it travels (the tensor's bytes)."""
        return int(self.detections.nbytes)


class ServerHealth:
    """Which servers are kept out after failing, and when each may be probed again.

    A server's back-off is ``first_backoff_s`` after its first failure and doubles with each
    failure after that (a failed probe, or failing again after re-admission before completing a
    batch), up to ``max_backoff_s``; completing a batch resets it. ``clock`` (monotonic seconds)
    is there for tests.

    Raises ConfigError (when built): back-offs that are not 0 < first <= max < infinity.
    """

    def __init__(
        self, first_backoff_s: float = 2.0, max_backoff_s: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not 0 < first_backoff_s <= max_backoff_s < math.inf:
            raise ConfigError(
                f"server back-off {first_backoff_s:g} s doubling up to {max_backoff_s:g} s: "
                "need 0 < first <= max, both finite"
            )
        self.first_backoff_s = first_backoff_s
        self.max_backoff_s = max_backoff_s
        self.clock = clock
        self._until: dict[str, float] = {}  # servers kept out -> when they may be probed
        self._backoff: dict[str, float] = {}  # servers that failed since their last completed batch

    def failed(self, server: str) -> float:
        """Keep ``server`` out for its next back-off; returns that back-off in seconds."""
        previous = self._backoff.get(server)
        backoff = self.first_backoff_s if previous is None else min(2 * previous, self.max_backoff_s)
        self._backoff[server] = backoff
        self._until[server] = self.clock() + backoff
        return backoff

    def succeeded(self, server: str) -> None:
        """``server`` completed a batch: its next failure starts from the first back-off again."""
        self._backoff.pop(server, None)

    def readmitted(self, server: str) -> None:
        """``server`` answered its probe and may be given work again (its back-off is kept until it
        completes a batch, so a server that fails again at once waits longer)."""
        self._until.pop(server, None)

    def due(self) -> list[str]:
        """Servers kept out whose back-off is over: to be probed now."""
        now = self.clock()
        return [server for server, until in self._until.items() if until <= now]

    def retry_in(self, server: str) -> float:
        """Seconds until ``server`` may be probed (0 when due or not kept out)."""
        return max(0.0, self._until.get(server, -math.inf) - self.clock())

    @property
    def out(self) -> list[str]:
        """Servers kept out now (due ones included, until they are probed)."""
        return list(self._until)


def dispatch(
    payloads: list[Payload],
    pool: ServerPool,
    capacity: CapacityModel,
    health: ServerHealth,
    pixels: dict[int, float],
    timeout_s: float = 60.0,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[int, TileOutput]:
    """Run every payload on some server; returns tile index -> output. ``pixels``: each payload's
    padded model-input pixels by tile index (its work for the schedule). ``timeout_s`` bounds the
    wait for each answer and, separately, the waiting while every server is busy (``sleep`` waits).

    Updates ``capacity`` (speeds measured with ``clock``; failed servers dropped, recovered ones
    re-admitted) and ``health`` (which servers are kept out, until when).

    Raises:
        NoServerLeftError: every server failed or is kept out; names the failures and the next probe.
        AllServersBusyError: every admitted server refused as busy for ``timeout_s`` of waiting.
    """
    by_tile = {p.tile_index: p for p in payloads}
    pending = [task_for(p.tile_index, p.model, pixels[p.tile_index]) for p in payloads]
    results: dict[int, TileOutput] = {}
    failures: list[str] = []
    busy = _Busy()
    while pending:
        readmit_recovered(pool, capacity, health)
        if not capacity.servers:
            raise NoServerLeftError(_none_left(len(pending), failures, health))
        free = [server for server in capacity.servers if server not in busy.refused]
        if not free:  # every admitted server refused: wait a little, then ask them all again
            if busy.waited_s >= timeout_s:
                raise AllServersBusyError(
                    f"all servers busy: {', '.join(capacity.servers)} refused {len(pending)} tiles for "
                    f"{busy.waited_s:.1f} s of retrying ({busy.refusals} refusals)"
                )
            sleep(busy.next_wait(timeout_s))
            free = capacity.servers
        plan = assign(pending, capacity, among=free)
        in_flight: list[tuple[str, list[Task], Future]] = []
        rounds: dict[str, _Round] = {}
        for server, tasks in plan.items():
            rounds[server] = timing = _Round(clock)
            # One call per model and payload shape: chunks of different sizes cannot be stacked.
            groups: dict[tuple, list[Task]] = {}
            for task in tasks:
                groups.setdefault(by_tile[task.tile_index].batch_key, []).append(task)
            for group in groups.values():
                batch = WorkBatch(group[0].model, tuple(by_tile[t.tile_index] for t in group))
                future = pool.submit(batch, server)
                future.add_done_callback(timing.answered)
                in_flight.append((server, group, future))
        pending = []
        refused_now: set[str] = set()
        for server, group, future in in_flight:
            try:
                answer = future.result(timeout=timeout_s)
            except ServerBusyCallError as error:  # working, not broken: elsewhere now, no back-off
                busy.refused_by(server, error.retry_after_s)
                refused_now.add(server)
                pending.extend(group)
                continue
            except Exception as error:  # any failure of a remote call: reassign, never resend differently
                failures.append(f"{server}: {type(error).__name__}: {error}")
                if server in capacity.servers:  # its other batch this round may have failed already
                    capacity.drop(server)
                    health.failed(server)
                pending.extend(group)
                continue
            for task, found in zip(group, answer, strict=True):
                results[task.tile_index] = TileOutput(found, server)
        for server, tasks in plan.items():
            # Not dropped and refused nothing: every batch it was given came back, and the time is its work's.
            if server in capacity.servers and server not in refused_now:
                calls = len({by_tile[t.tile_index].batch_key for t in tasks})  # one call per model and shape
                capacity.observe(server, sum(t.work for t in tasks), rounds[server].seconds, calls)
                health.succeeded(server)
    return results


def readmit_recovered(pool: ServerPool, capacity: CapacityModel, health: ServerHealth) -> list[str]:
    """Probe each server whose back-off is over: re-admit those that answer (capacity from the hint
    again), keep the others out for a longer back-off. Returns the servers re-admitted."""
    readmitted = []
    for server in health.due():
        if _answers(pool, server):
            health.readmitted(server)
            capacity.readmit(server)
            readmitted.append(server)
        else:
            health.failed(server)
    return readmitted


def _answers(pool: ServerPool, server: str) -> bool:
    try:
        return bool(pool.probe(server))
    except Exception:  # a probe that breaks is a server that did not answer: it stays out
        return False


def _none_left(tiles: int, failures: list[str], health: ServerHealth) -> str:
    message = f"no server left to run {tiles} tiles"
    if failures:
        message += f": {'; '.join(failures)}"
    if health.out:
        soonest = min(health.out, key=health.retry_in)
        message += f" (kept out after failing: {', '.join(health.out)}; next probe of {soonest} in "
        message += f"{health.retry_in(soonest):.1f} s)"
    return message


class _Busy:
    """This frame's busy refusals: who refused since the last wait, the waits so far and their total."""

    def __init__(self) -> None:
        self.refused: set[str] = set()
        self.refusals = 0
        self.waits = 0
        self.waited_s = 0.0
        self.hint_s = 0.0

    def refused_by(self, server: str, hint_s: float | None) -> None:
        self.refused.add(server)
        self.refusals += 1
        self.hint_s = max(self.hint_s, hint_s or 0.0)

    def next_wait(self, budget_s: float) -> float:
        """The wait before asking every server again: the larger of the servers' hint and 10 ms doubled
        per wait so far, at most 200 ms, never past ``budget_s`` of waiting in all. Forgets who refused."""
        wait = min(max(self.hint_s, BUSY_FIRST_WAIT_S * 2**self.waits), BUSY_MAX_WAIT_S)
        wait = max(0.0, min(wait, budget_s - self.waited_s))
        self.waits += 1
        self.waited_s += wait
        self.refused.clear()
        self.hint_s = 0.0
        return wait


class _Round:
    """One server's share of a round, timed from its first send to its last answer: the time it
    needed for all of it, link included. Answers are timed as they arrive (a done callback), not
    when collected, so a slow server collected first does not make later ones look slow."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.started = self.last_answer = clock()

    def answered(self, _: Future) -> None:
        self.last_answer = max(self.last_answer, self.clock())

    @property
    def seconds(self) -> float:
        return self.last_answer - self.started
