"""Server side and its backends: ``create_pool("threads", 3)`` for local servers by backend name,
``create_pool("threads", ["edge-1:8001", "edge-2:8001"])`` for remote servers over gRPC."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from privinfer.errors import ConfigError
from privinfer.serve.base import (
    EMBEDDING,
    MODEL_INPUTS,
    OBFUSCATED_PIXELS,
    PATCHED,
    PIXELS,
    REPAIRED,
    FeaturePatch,
    Payload,
    ServerInfo,
    ServerPool,
    WorkBatch,
)
from privinfer.serve.grpc_client import GrpcPool, RemoteOptions
from privinfer.serve.local import ProcessPool, ThreadPool

BACKENDS: dict[str, Callable[..., ServerPool]] = {"threads": ThreadPool, "processes": ProcessPool}


def create_pool(
    backend: str,
    servers: int | Sequence[str],
    capacities: list[float] | None = None,
    device: str = "cpu",
    remote: RemoteOptions | None = None,
) -> ServerPool:
    """``servers`` local servers of ``backend`` when a count; remote gRPC servers when addresses
    (``backend`` and ``device`` then do not apply: the servers chose theirs).

    Raises:
        ConfigError: an unknown backend, a non-positive count, mismatched capacities, a bad address.
        ServerCallError: a remote server is unreachable or not ready.
    """
    if not isinstance(servers, int):
        return GrpcPool(servers, capacities, remote or RemoteOptions())
    if backend not in BACKENDS:
        raise ConfigError(f"unknown server backend '{backend}'; choose from: {', '.join(sorted(BACKENDS))}")
    if servers < 1:
        raise ConfigError(f"need at least one server, got {servers}")
    if capacities is not None and (len(capacities) != servers or any(c <= 0 for c in capacities)):
        raise ConfigError(f"give {servers} positive capacities, got {capacities}")
    return BACKENDS[backend](servers, capacities, device)


__all__ = [
    "EMBEDDING", "MODEL_INPUTS", "OBFUSCATED_PIXELS", "PATCHED", "PIXELS", "REPAIRED", "FeaturePatch", "GrpcPool",
    "Payload", "RemoteOptions", "ServerInfo", "ServerPool", "WorkBatch", "create_pool",
]  # fmt: skip
