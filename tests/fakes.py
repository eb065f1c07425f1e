"""Test doubles shared by several test modules."""

from __future__ import annotations

from concurrent.futures import Future

import numpy as np

from privinfer.models.served_decode import DETECTION_WIDTH
from privinfer.serve import ServerInfo, ServerPool, WorkBatch


def empty_raw(batch: WorkBatch) -> np.ndarray:
    """The answer of a server that found nothing in ``batch``: one row per chunk, scored 0 (below
    every floor), as a served graph pads an empty answer."""
    return np.zeros((len(batch.payloads), 1, DETECTION_WIDTH), np.float32)


class NullServers(ServerPool):
    """``count`` servers that answer every batch at once with an empty answer."""

    def __init__(self, count: int) -> None:
        self._infos = [ServerInfo(f"null-{i}") for i in range(count)]

    def servers(self):
        return list(self._infos)

    def submit(self, batch: WorkBatch, server: str) -> Future:
        future: Future = Future()
        future.set_result(empty_raw(batch))
        return future


class FlakyPool(ServerPool):
    """Wraps a real pool; the servers named in ``broken`` fail every call (change it to heal them).

    ``calls`` records (server, payload kinds) for every submitted batch.
    """

    def __init__(self, inner: ServerPool, broken: set[str]) -> None:
        self.inner, self.broken, self.calls = inner, broken, []

    def servers(self):
        return self.inner.servers()

    def submit(self, batch: WorkBatch, server: str) -> Future:
        self.calls.append((server, tuple(p.kind for p in batch.payloads)))
        if server in self.broken:
            future: Future = Future()
            future.set_exception(ConnectionError(f"{server} is down"))
            return future
        return self.inner.submit(batch, server)

    def close(self):
        self.inner.close()
