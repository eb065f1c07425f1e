"""A network testbed on this one machine: several `privinfer serve` servers, each in its own
network namespace behind its own shaped link (bandwidth, packet loss) and with its own CPU share.

    config.py     what a testbed is made of (TOML / command-line lists), checked
    network.py    namespaces and veth links in a private subnet that exists only on this machine
    shaping.py    bandwidth (tc tbf, both directions) and packet loss (nftables)
    processes.py  the servers' processes: start detached, ask whether live, stop
    cpu_budget.py each server's CPU budget: a cgroup v1 CFS quota
    control.py    up / status / down, and the state recorded under ``<cache>/testbed/``
    report.py     status as a table or JSON

Needs root, iproute2 (and nftables for loss, util-linux's taskset for CPU pinning).
"""

from privinfer.testbed.config import ServerSpec, TestbedConfig, load_config, rate_bits
from privinfer.testbed.control import (
    ServerStatus,
    Testbed,
    TestbedServer,
    current,
    down,
    state_dir,
    status,
    unavailable,
    up,
)

__all__ = [
    "ServerSpec", "ServerStatus", "Testbed", "TestbedConfig", "TestbedServer", "current", "down", "load_config",
    "rate_bits", "state_dir", "status", "unavailable", "up",
]  # fmt: skip
