"""Sending payloads to servers by the schedule and collecting raw outputs, surviving failures.

A batch whose server fails (error, timeout, gone) is sent again to the remaining servers, with
the very same payloads: a retry can never change a tile's treatment (a privatized tile is never
re-sent raw). When no server is left the frame fails with an explicit error.
"""

from __future__ import annotations

import time
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from privinfer.errors import PrivinferError
from privinfer.schedule import CapacityModel, Task, assign, task_for
from privinfer.serve import Payload, ServerPool, WorkBatch


class NoServerLeftError(PrivinferError):
    """Every server failed for this frame."""


@dataclass(frozen=True)
class TileOutput:
    raw: np.ndarray  # (anchors, 124)
    server: str


def dispatch(
    payloads: list[Payload], pool: ServerPool, capacity: CapacityModel, input_size: int, timeout_s: float = 60.0
) -> dict[int, TileOutput]:
    """Run every payload on some server; returns tile index -> output. Updates ``capacity``."""
    by_tile = {p.tile_index: p for p in payloads}
    pending = [task_for(p.tile_index, p.model, input_size) for p in payloads]
    results: dict[int, TileOutput] = {}
    failures: list[str] = []
    while pending:
        if not capacity.servers:
            raise NoServerLeftError(f"no server left to run {len(pending)} tiles: {'; '.join(failures)}")
        plan = assign(pending, capacity)
        in_flight: list[tuple[str, list[Task], Future]] = []
        rounds: dict[str, _Round] = {}
        for server, tasks in plan.items():
            rounds[server] = timing = _Round(time.perf_counter())
            for model in sorted({t.model for t in tasks}):
                group = [t for t in tasks if t.model == model]
                batch = WorkBatch(model, tuple(by_tile[t.tile_index] for t in group))
                future = pool.submit(batch, server)
                future.add_done_callback(timing.answered)
                in_flight.append((server, group, future))
        pending = []
        for server, group, future in in_flight:
            try:
                raw = future.result(timeout=timeout_s)
            except Exception as error:  # any failure of a remote call: reassign, never resend differently
                failures.append(f"{server}: {type(error).__name__}: {error}")
                capacity.drop(server)
                pending.extend(group)
                continue
            for task, tile_raw in zip(group, raw, strict=True):
                results[task.tile_index] = TileOutput(tile_raw, server)
        for server, tasks in plan.items():
            if server in capacity.servers:  # not dropped: every batch it was given came back
                capacity.observe(server, sum(t.work for t in tasks), rounds[server].seconds)
    return results


class _Round:
    """One server's share of a round, timed from its first send to its last answer: the time it
    needed for all of it, link included. Answers are timed as they arrive (a done callback), not
    when collected, so a slow server collected first does not make later ones look slow."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.last_answer = started

    def answered(self, _: Future) -> None:
        self.last_answer = max(self.last_answer, time.perf_counter())

    @property
    def seconds(self) -> float:
        return self.last_answer - self.started
