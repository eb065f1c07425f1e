"""Test doubles shared by several test modules."""

from __future__ import annotations

from concurrent.futures import Future

import numpy as np

from privinfer.models import nanodet
from privinfer.serve import EMBEDDING, ServerInfo, ServerPool, WorkBatch


def empty_raw(batch: WorkBatch, stride: int = 8) -> np.ndarray:
    """All-zero raw outputs (N, anchors, 124) of the size a real server returns for ``batch``: pixels
    padded to multiples of 32, or an embedding's sides times its ``stride``."""
    first = batch.payloads[0]
    if first.kind == EMBEDDING:
        height, width = first.data.shape[1] * stride, first.data.shape[2] * stride
    else:
        height, width = nanodet.padded_side(first.data.shape[0]), nanodet.padded_side(first.data.shape[1])
    return np.zeros((len(batch.payloads), nanodet.anchor_count(height, width), nanodet.RAW_WIDTH), np.float32)


class NullServers(ServerPool):
    """``count`` servers that answer every batch at once with empty raw outputs of the right size."""

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
