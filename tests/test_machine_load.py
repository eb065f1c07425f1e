"""The benchmark's measure of other work: CPU time of processes that are not the benchmark's own."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from privinfer.bench.machine_load import CpuSample, other_work_share

BURN = "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end: pass\n"
needs_proc = pytest.mark.skipif(CpuSample.now().machine_busy is None, reason="no /proc/stat on this system")


@needs_proc
def test_a_waited_for_child_is_our_own_work_and_a_stranger_is_not():
    start = CpuSample.now()
    subprocess.run([sys.executable, "-c", BURN.format(seconds=1.0)], check=True)  # like our servers
    ours = CpuSample.now()
    stranger = subprocess.Popen([sys.executable, "-c", BURN.format(seconds=3.0)])
    try:
        time.sleep(1.5)
        end = CpuSample.now()
    finally:
        stranger.kill()
        stranger.wait()
    cores = os.cpu_count() or 1
    # One busy core of `cores`; loose bounds, the machine may have other work of its own.
    assert other_work_share(start, ours) < 0.5 / cores + 0.25
    assert other_work_share(ours, end) > 0.6 / cores


def test_without_proc_stat_the_share_is_unknown():
    sample = CpuSample(time.monotonic(), None, 0.0)
    assert other_work_share(sample, sample) is None
