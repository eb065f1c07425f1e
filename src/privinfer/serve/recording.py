"""A pool wrapper that keeps a copy of every payload that leaves the client (for audits and tests)."""

from __future__ import annotations

import threading
from concurrent.futures import Future

from privinfer.serve.base import Payload, ServerInfo, ServerPool, WorkBatch


class RecordingPool(ServerPool):
    """Forwards to ``inner`` and records (server, payload) for everything submitted, and
    (server, answered) for every probe."""

    def __init__(self, inner: ServerPool) -> None:
        self.inner = inner
        self.sent: list[tuple[str, Payload]] = []
        self.probes: list[tuple[str, bool]] = []
        self._lock = threading.Lock()

    def servers(self) -> list[ServerInfo]:
        return self.inner.servers()

    def unready(self) -> list[str]:
        return self.inner.unready()

    def submit(self, batch: WorkBatch, server: str) -> Future:
        with self._lock:
            self.sent.extend((server, p) for p in batch.payloads)
        return self.inner.submit(batch, server)

    def probe(self, server: str) -> bool:
        answered = self.inner.probe(server)
        with self._lock:
            self.probes.append((server, answered))
        return answered

    def drain(self) -> list[tuple[str, Payload]]:
        """Everything recorded since the last drain, oldest first; the record is emptied (a long
        video keeps only the current frame's payloads)."""
        with self._lock:
            sent, self.sent = self.sent, []
        return sent

    def close(self) -> None:
        self.inner.close()
