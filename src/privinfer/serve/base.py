"""The server interface the scheduler talks to, whatever the transport.

A *payload* is exactly what leaves the client for one tile; a *batch* groups a server's
payloads of one kind so the server runs them in one model call. Backends (threads, local
processes, gRPC) implement `ServerPool`: ``servers()`` and ``submit(batch, server)``, and may
implement ``probe(server)``, asked before a server that failed is given work again.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

PIXELS = "pixels"  # raw tile pixels (uint8 H x W x 3)
OBFUSCATED_PIXELS = "obfuscated-pixels"  # tile pixels with sensitive boxes blurred / pixelated
EMBEDDING = "embedding"  # obfuscated embedding (float32 C x h x w)


@dataclass(frozen=True)
class Payload:
    """One tile's data as sent to a server."""

    tile_index: int
    kind: str
    data: np.ndarray

    @property
    def nbytes(self) -> int:
        return int(self.data.nbytes)

    @property
    def model(self) -> str:
        """Which server model runs it: embeddings go to the tail, any pixels to the full model."""
        return "tail" if self.kind == EMBEDDING else "full"


@dataclass(frozen=True)
class WorkBatch:
    """Payloads for one server and one model, stacked into one call."""

    model: str
    payloads: tuple[Payload, ...]

    def stacked(self) -> np.ndarray:
        return np.stack([p.data for p in self.payloads])


@dataclass(frozen=True)
class ServerInfo:
    """A server's name and capacity hint (relative throughput; 1.0 = one reference CPU worker)."""

    name: str
    capacity: float = 1.0


class ServerPool(ABC):
    """Where batches go. ``submit`` returns a future of raw outputs (N, anchors, 124) float32."""

    @abstractmethod
    def servers(self) -> list[ServerInfo]: ...

    @abstractmethod
    def submit(self, batch: WorkBatch, server: str) -> Future: ...

    def unready(self) -> list[str]:
        """Servers that did not answer when the pool was built: to be kept out like failed ones
        until a probe finds them. Empty by default: a local server is started ready."""
        return []

    def probe(self, server: str) -> bool:
        """Whether ``server``, which failed before, answers again and may be given work. Quick (a
        short deadline): a frame waits for it. By default True: a local server has no link to lose."""
        return True

    def close(self) -> None:  # noqa: B027  (optional hook)
        """Release workers; the pool is unusable afterwards."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
