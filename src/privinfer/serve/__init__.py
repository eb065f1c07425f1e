"""Server side and its backends, built by name: ``create_pool("threads", count=3)``."""

from __future__ import annotations

from collections.abc import Callable

from privinfer.errors import ConfigError
from privinfer.serve.base import EMBEDDING, OBFUSCATED_PIXELS, PIXELS, Payload, ServerInfo, ServerPool, WorkBatch
from privinfer.serve.local import ProcessPool, ThreadPool

BACKENDS: dict[str, Callable[..., ServerPool]] = {"threads": ThreadPool, "processes": ProcessPool}


def create_pool(backend: str, count: int, capacities: list[float] | None = None, device: str = "cpu") -> ServerPool:
    """Raises ConfigError for an unknown backend, a non-positive count or mismatched capacities."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown server backend '{backend}'; choose from: {', '.join(sorted(BACKENDS))}")
    if count < 1:
        raise ConfigError(f"need at least one server, got {count}")
    if capacities is not None and (len(capacities) != count or any(c <= 0 for c in capacities)):
        raise ConfigError(f"give {count} positive capacities, got {capacities}")
    return BACKENDS[backend](count, capacities, device)


__all__ = [
    "EMBEDDING", "OBFUSCATED_PIXELS", "PIXELS", "Payload", "ServerInfo", "ServerPool", "WorkBatch", "create_pool",
]  # fmt: skip
