"""Test doubles shared by several test modules."""

from __future__ import annotations

from concurrent.futures import Future

from privinfer.serve import ServerPool, WorkBatch


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
