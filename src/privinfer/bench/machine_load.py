"""How much of the machine other work took while the benchmark ran.

The load average cannot tell: it counts the benchmark's own client and servers too, and it lags
(a job that ended a minute before the start still shows). Instead: the CPU time the whole machine
was busy (``/proc/stat``) minus the CPU time of this process and of the children it waited for
(its local and testbed servers, all stopped before the end), over the CPU time available.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

_BUSY_FIELDS = (0, 1, 2, 5, 6, 7)  # user, nice, system, irq, softirq, steal (not idle, iowait)
SHARE_WORTH_A_NOTE = 0.10  # other work above this share of all cores inflates absolute times


@dataclass(frozen=True)
class CpuSample:
    wall: float
    machine_busy: float | None  # seconds of CPU the whole machine spent busy (None: no /proc/stat)
    own: float  # seconds of CPU of this process and its waited-for children

    @classmethod
    def now(cls) -> CpuSample:
        times = os.times()
        own = times.user + times.system + times.children_user + times.children_system
        return cls(time.monotonic(), _machine_busy(), own)


def other_work_share(start: CpuSample, end: CpuSample) -> float | None:
    """Share of all cores' time that other processes used between two samples (None: unknown here)."""
    if start.machine_busy is None or end.machine_busy is None:
        return None
    available = (end.wall - start.wall) * (os.cpu_count() or 1)
    others = (end.machine_busy - start.machine_busy) - (end.own - start.own)
    return min(1.0, max(0.0, others / available)) if available > 0 else None


def _machine_busy() -> float | None:
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    if first[0] != "cpu":
        return None
    ticks = [int(v) for v in first[1:]]
    return sum(ticks[i] for i in _BUSY_FIELDS if i < len(ticks)) / os.sysconf("SC_CLK_TCK")
