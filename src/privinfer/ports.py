"""Free TCP ports on the loopback interface, for servers that tests and scripts start themselves."""

from __future__ import annotations

import socket


def free_loopback_ports(count: int = 1) -> list[int]:
    """``count`` distinct ports on 127.0.0.1 that were free a moment ago (all bound at once, so they
    differ; released before returning, so another process could still take one first)."""
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()
