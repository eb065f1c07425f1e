"""Which tile goes to which server: finish the frame as early as the servers' capacities allow.

Each tile costs work proportional to the pixels the server's model processes (a tail call on an
embedding costs the tail's share of a full pass), plus a cost per call. Both are learned per server
from what dispatch measures: each observation is (calls, work, seconds) of one server's round, and
the model is ``seconds = call_seconds * calls + seconds_per_unit * work``, fitted by least squares
over the server's last ``window`` observations once they hold two different sizes of work (a
single size cannot tell a call's cost from its pixels' cost). Until then the per-call cost stays at
its prior (``DEFAULT_CALL_SECONDS``) and seconds per unit follow an exponential moving average of
each measurement's seconds per unit (the call's cost not taken off: pessimistic for more chunks),
starting from the capacity hint (the first measurement replaces
the hint). The fit's residual spread (``noise_seconds``) says how far a prediction can be trusted:
the partition splits only when the predicted gain is larger than that.
A server that failed is dropped from the model while it is kept out (``dispatch.ServerHealth``)
and, when re-admitted, starts again from its hint (on the scale the other servers were measured
at): what was learned before it failed may not hold for what answers at its address now (a
restarted process, another machine).
A measurement is a server's whole round trip (``dispatch`` times each server from its first send
to its last answer), so a slow link makes a slow server: transfer is learned together with compute.
That is exact while a tile's bytes are proportional to its work; an embedding tile (0.6 of the
work) carries about as many bytes both ways as a raw one, so on a bandwidth-bound link its cost is
underestimated up to ~1.8x when a frame mixes both kinds.
Assignment is greedy longest-processing-time-first: biggest tile first, onto the server that
would finish it earliest; that is within 4/3 of the optimal makespan and fast enough per frame.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass, field

import numpy as np

# Share of a full NanoDet pass spent after the default stride-8 cut (measured: see bench script).
TAIL_SHARE = 0.6
DEFAULT_CALL_SECONDS = 0.004  # prior of a call's fixed cost (request, answer, decoding) until it is fitted
WINDOW = 24  # observations per server the fit uses: recent enough to follow a change of load


@dataclass(frozen=True)
class Task:
    """One chunk's work: which model it needs and how much work that is (in full-pass pixel units)."""

    tile_index: int
    model: str
    work: float


def task_for(tile_index: int, model: str, pixels: float) -> Task:
    """The work of running ``model`` on a chunk whose padded model input has ``pixels`` pixels."""
    share = TAIL_SHARE if model == "tail" else 1.0
    return Task(tile_index, model, share * pixels / 1e5)


@dataclass
class CapacityModel:
    """Seconds per work unit for each admitted server, from hints then from measurements.

    ``hints`` keeps every server's starting estimate (dropped ones too), to re-admit it from.
    """

    seconds_per_unit: dict[str, float]
    smoothing: float = 0.3
    observations: dict[str, int] = field(default_factory=dict)
    hints: dict[str, float] = field(default_factory=dict)
    # False keeps the hints as they are (fixed capacities: reproducible partitions, e.g. in evaluations).
    learning: bool = True
    call_seconds: dict[str, float] = field(default_factory=dict)  # fitted fixed cost of one call
    noise_seconds: dict[str, float] = field(default_factory=dict)  # residual spread of the fit
    window: int = WINDOW
    samples: dict[str, deque] = field(default_factory=dict)  # server -> recent (calls, work, seconds)

    def __post_init__(self) -> None:
        self.hints = {**self.seconds_per_unit, **self.hints}

    @classmethod
    def from_hints(cls, capacities: dict[str, float], unit_seconds: float = 0.05) -> CapacityModel:
        return cls({name: unit_seconds / max(capacity, 1e-6) for name, capacity in capacities.items()})

    def observe(self, server: str, work: float, seconds: float, calls: int = 1) -> None:
        """Fold one measured round (``calls`` model calls, ``work`` units, ``seconds`` from first send
        to last answer) into the server's estimates."""
        if not self.learning or work <= 0 or seconds <= 0 or server not in self.seconds_per_unit:
            return
        samples = self.samples.setdefault(server, deque(maxlen=self.window))
        samples.append((max(calls, 1), work, seconds))
        seen = self.observations.get(server, 0)
        self.observations[server] = seen + 1
        if self._fit(server, samples):
            return
        # Unfitted, the whole time is put on the pixels: a split then looks no better than it is.
        measured = seconds / work
        # The first measurement replaces the hint outright: a hint is only a guess.
        weight = 1.0 if seen == 0 else self.smoothing
        self.seconds_per_unit[server] = (1 - weight) * self.seconds_per_unit[server] + weight * measured

    def _fit(self, server: str, samples: deque) -> bool:
        """Least squares of seconds on (calls, work) when the window holds two sizes of work apart by
        10%; False (nothing changed) otherwise or when the fit is not physical (a negative cost)."""
        calls, work, seconds = (np.array(column, dtype=float) for column in zip(*samples, strict=True))
        per_call = work / calls
        if len(samples) < 3 or per_call.max() < 1.1 * per_call.min():
            return False
        design = np.stack([calls, work], axis=1)
        (call, unit), *_ = np.linalg.lstsq(design, seconds, rcond=None)
        if unit <= 0:
            return False
        if call < 0:  # no fixed cost measurable: all of the time is the pixels'
            call, unit = 0.0, float(np.sum(seconds * work) / np.sum(work * work))
        residuals = seconds - design @ np.array([call, unit])
        self.call_seconds[server] = float(call)
        self.seconds_per_unit[server] = float(unit)
        self.noise_seconds[server] = float(np.sqrt(np.mean(residuals**2)))
        return True

    def call_cost(self, server: str) -> float:
        """The fixed cost of one call to ``server`` in seconds: fitted, or the prior."""
        return self.call_seconds.get(server, DEFAULT_CALL_SECONDS)

    def noise(self, servers: list[str] | None = None) -> float:
        """The largest residual spread (seconds) of the fits of ``servers`` (default all); 0 unfitted."""
        chosen = self.servers if servers is None else servers
        return max((self.noise_seconds.get(s, 0.0) for s in chosen), default=0.0)

    def predicted_seconds(self, server: str, work: float, calls: int = 1) -> float:
        """What one round of ``calls`` calls and ``work`` units should take on ``server``."""
        return self.call_cost(server) * calls + self.seconds_per_unit[server] * work

    def drop(self, server: str) -> None:
        """Stop giving ``server`` work (it failed); ``readmit`` brings it back."""
        self.seconds_per_unit.pop(server, None)
        self.observations.pop(server, None)
        self._forget(server)

    def _forget(self, server: str) -> None:
        for learned in (self.call_seconds, self.noise_seconds, self.samples):
            learned.pop(server, None)

    def readmit(self, server: str) -> None:
        """Give ``server`` work again, its estimate restarted from its hint (its next measurement
        replaces that). A hint is a relative speed whose absolute scale is a guess, so it is put on
        the measured scale: times the median measured / hinted ratio of the servers measured so far.
        Otherwise a hint slower than what the others measure would keep the server from ever being
        given a tile again, and so from ever being measured.

        Raises KeyError for a server the model never had.
        """
        ratios = [self.seconds_per_unit[s] / self.hints[s] for s in self.observations if s in self.hints]
        scale = statistics.median(ratios) if ratios else 1.0
        self.seconds_per_unit[server] = self.hints[server] * scale
        self.observations.pop(server, None)
        self._forget(server)

    @property
    def servers(self) -> list[str]:
        return list(self.seconds_per_unit)

    def speeds(self) -> dict[str, float]:
        """Each admitted server's relative throughput (work units per second), for sizing chunks."""
        return {server: 1.0 / max(spu, 1e-9) for server, spu in self.seconds_per_unit.items()}


def assign(tasks: list[Task], capacity: CapacityModel, among: list[str] | None = None) -> dict[str, list[Task]]:
    """Greedy LPT assignment onto ``among`` (default: every admitted server; others are ignored);
    returns server -> its tasks (servers with none are omitted)."""
    finish = dict.fromkeys(capacity.servers if among is None else [s for s in capacity.servers if s in among], 0.0)
    plan: dict[str, list[Task]] = {}
    for task in sorted(tasks, key=lambda t: (-t.work, t.tile_index)):
        server = min(finish, key=lambda s: (finish[s] + task.work * capacity.seconds_per_unit[s], s))
        finish[server] += task.work * capacity.seconds_per_unit[server]
        plan.setdefault(server, []).append(task)
    return plan


def predicted_finish(plan: dict[str, list[Task]], capacity: CapacityModel) -> float:
    """Seconds until the last server finishes this plan, by the current estimates."""
    return max((sum(t.work for t in ts) * capacity.seconds_per_unit[s] for s, ts in plan.items()), default=0.0)
