"""A server's CPU budget, enforced by the kernel: a cgroup v1 ``cpu`` group per budgeted server
whose CFS quota is the budget times the period (``cpu = 0.25``: 2.5 ms of CPU time in every 10 ms,
over all the server's threads together), so an edge server's share of a machine is emulated here.

The period is 10 ms, not the kernel's default 100 ms: with 100 ms a 20 ms model call that finds
its quota unused runs at full speed (the budget only shows over many calls in a row), and one that
finds it spent waits up to 80 ms. A short period spreads every call evenly: a 20 ms call takes
about 80 ms at 0.25 core, as on a core four times slower. The kernel's smallest quota is 1 ms, so
below 0.1 core the period grows to keep it.

The server process joins its group before it execs anything (``wrap``: a shell writes its own pid
into ``cgroup.procs``, then execs the server), so every thread it ever starts is counted. The
groups live under ``<cpu cgroup root>/privinfer-testbed/``; ``remove`` deletes them once their
processes are gone. Only cgroup v1's ``cpu`` controller is supported (``/sys/fs/cgroup/cpu``); on a
machine without it a budget is refused with a message saying so, never silently ignored.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from privinfer.errors import TestbedError

CPU_ROOT = Path(os.environ.get("PRIVINFER_CPU_CGROUP", "/sys/fs/cgroup/cpu"))
GROUP = "privinfer-testbed"
PERIOD_US = 10_000  # CFS period: short, so that each model call is slowed evenly
MIN_QUOTA_US = 1_000  # the kernel refuses a smaller quota


def group_path(index: int, root: Path | None = None) -> Path:
    """The cgroup folder of server ``index``."""
    return (root or CPU_ROOT) / GROUP / f"server-{index}"


def period_us(cpu: float) -> int:
    """The CFS period for a budget of ``cpu`` cores: ``PERIOD_US``, longer when the quota would be
    under the kernel's 1 ms."""
    return max(PERIOD_US, math.ceil(MIN_QUOTA_US / cpu))


def quota_us(cpu: float) -> int:
    """The CFS quota for ``cpu`` cores' worth of time per ``period_us(cpu)``."""
    return max(MIN_QUOTA_US, round(cpu * period_us(cpu)))


def unavailable(root: Path | None = None) -> str | None:
    """Why budgets cannot be enforced here (no v1 cpu controller, not writable), or None."""
    root = root or CPU_ROOT
    if not (root / "cpu.cfs_quota_us").is_file():
        return f"no cgroup v1 cpu controller at {root} (CPU budgets need cpu.cfs_quota_us)"
    if not os.access(root, os.W_OK):
        return f"{root} is not writable (CPU budgets need root)"
    return None


def create(index: int, cpu: float, root: Path | None = None) -> Path:
    """Make (or reset) server ``index``'s group with a quota of ``cpu`` cores; returns its folder.

    Raises TestbedError when the controller is missing or the files cannot be written."""
    reason = unavailable(root)
    if reason:
        raise TestbedError(f"cannot give server {index} a CPU budget of {cpu:g}: {reason}")
    path = group_path(index, root)
    try:
        path.mkdir(parents=True, exist_ok=True)
        (path / "cpu.cfs_quota_us").write_text("-1\n")  # a lower period is refused under a higher quota
        (path / "cpu.cfs_period_us").write_text(f"{period_us(cpu)}\n")
        (path / "cpu.cfs_quota_us").write_text(f"{quota_us(cpu)}\n")
    except OSError as error:
        raise TestbedError(f"cannot write the CPU budget of server {index} in {path}: {error.strerror}") from None
    return path


def read(index: int, root: Path | None = None) -> float | None:
    """The budget the kernel holds for server ``index`` (cores), or None without a group or quota."""
    path = group_path(index, root)
    try:
        quota = int((path / "cpu.cfs_quota_us").read_text())
        period = int((path / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota < 0 else quota / period


def wrap(command: list[str], index: int, root: Path | None = None) -> list[str]:
    """``command`` run inside server ``index``'s group from its first instruction on (pure)."""
    procs = group_path(index, root) / "cgroup.procs"
    return ["sh", "-c", 'echo $$ > "$0" && exec "$@"', str(procs), *command]


def remove(index: int, root: Path | None = None) -> bool:
    """Delete server ``index``'s group (its processes must be gone); whether one was removed."""
    path = group_path(index, root)
    try:
        path.rmdir()  # a cgroup folder is removed with rmdir, its control files with it
    except FileNotFoundError:
        return False
    except OSError as error:
        raise TestbedError(f"cannot remove the CPU budget group {path}: {error.strerror}") from None
    return True


def remove_all(root: Path | None = None) -> list[str]:
    """Delete every server group of the testbed, then the testbed's folder; the folders removed."""
    base = (root or CPU_ROOT) / GROUP
    if not base.is_dir():
        return []
    removed = []
    for path in sorted(base.glob("server-*")):
        if path.is_dir() and remove(int(path.name.removeprefix("server-")), root):
            removed.append(str(path))
    try:
        base.rmdir()
    except OSError:
        pass  # another group still in it: left for the next ``down``
    return removed
