"""The benchmark's measure of other work: CPU time of processes that are not the benchmark's own.

Every check here is on CPU time, never on wall time, so it holds however busy the machine is: a
process that burns half a second of CPU has burnt it, however long that took."""

from __future__ import annotations

import subprocess
import sys

import pytest

from privinfer.bench import machine_load
from privinfer.bench.machine_load import CpuSample, other_work_share

# Burns ``seconds`` of its own CPU time (not wall time: under load that takes longer, the same CPU).
BURN = "import time\nwhile time.process_time() < {seconds}: pass\n"
needs_proc = pytest.mark.skipif(CpuSample.now().machine_busy is None, reason="no /proc/stat on this system")


def test_the_share_is_the_machine_s_busy_time_less_our_own_over_the_cores_time(monkeypatch):
    monkeypatch.setattr(machine_load.os, "cpu_count", lambda: 2)
    start = CpuSample(wall=10.0, machine_busy=100.0, own=5.0)
    end = CpuSample(wall=12.0, machine_busy=103.0, own=6.0)  # 2 s of 2 cores; 3 s busy, 1 s of it ours
    assert other_work_share(start, end) == pytest.approx(0.5)
    assert other_work_share(start, CpuSample(12.0, 100.5, 6.0)) == 0.0, "never below nothing"
    assert other_work_share(start, CpuSample(12.0, 110.0, 5.0)) == 1.0, "never above all cores"
    assert other_work_share(start, CpuSample(10.0, 101.0, 5.0)) is None, "no time passed: unknown"


def test_without_proc_stat_the_share_is_unknown():
    sample = CpuSample(0.0, None, 0.0)
    assert other_work_share(sample, sample) is None


@needs_proc
def test_a_waited_for_child_is_our_own_work():
    start = CpuSample.now()
    subprocess.run([sys.executable, "-c", BURN.format(seconds=0.5)], check=True)  # like our servers
    end = CpuSample.now()
    assert end.own - start.own >= 0.45
    assert end.machine_busy - start.machine_busy >= 0.45 - 0.05  # /proc/stat counts in clock ticks


@needs_proc
def test_a_stranger_s_cpu_is_the_machine_s_and_not_ours():
    start = CpuSample.now()
    # The stranger burns, says so, and stays alive un-reaped: its CPU time is never a child's of ours.
    stranger = subprocess.Popen(
        [sys.executable, "-c", BURN.format(seconds=0.5) + "print('done', flush=True)\ntime.sleep(60)\n"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert stranger.stdout.readline().strip() == "done"  # blocks without burning our CPU
        end = CpuSample.now()
    finally:
        stranger.kill()
        stranger.wait()
    assert end.own - start.own < 0.25, "the stranger's half second is not counted as ours"
    assert end.machine_busy - start.machine_busy >= 0.45 - 0.05
