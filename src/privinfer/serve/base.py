"""The server interface the scheduler talks to, whatever the transport.

A *payload* is exactly what leaves the client for one chunk; a *batch* groups a server's
payloads of one kind and size so the server runs them in one model call. Backends (threads, local
processes, gRPC) implement `ServerPool`: ``servers()`` and ``submit(batch, server)``, and may
implement ``probe(server)``, asked before a server that failed is given work again.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

PIXELS = "pixels"  # raw chunk pixels (uint8 H x W x 3)
OBFUSCATED_PIXELS = "obfuscated-pixels"  # chunk pixels with sensitive regions filled / blurred / pixelated
EMBEDDING = "embedding"  # obfuscated embedding of a whole chunk (float16 C x h x w)
PATCHED = "patched"  # pixels with sensitive regions filled, plus their obfuscated feature patches
REPAIRED = "repaired"  # pixels with sensitive regions filled, plus their cells: the server repairs them


@dataclass(frozen=True)
class FeaturePatch:
    """Obfuscated stride-8 features of the cells that cover a chunk's sensitive regions.

    cells: (K,) int32 flat indices into the chunk's cell grid (row * cells per row + column, the
    grid of the chunk padded to multiples of 32); channels: (k,) int32, the channels sent; values:
    (K, k) float16, those channels of each cell. Every channel not sent is exactly zero in every
    patch cell: a channel an obfuscator zeroed costs no bytes.
    """

    cells: np.ndarray
    channels: np.ndarray
    values: np.ndarray

    @property
    def nbytes(self) -> int:
        return int(self.cells.nbytes + self.channels.nbytes + self.values.nbytes)

    def dense(self, channels: int) -> np.ndarray:
        """The patch as the server writes it: (K, ``channels``) float32, zeros where not sent."""
        full = np.zeros((len(self.cells), channels), np.float32)
        full[:, self.channels] = self.values
        return full


# The server model each payload kind runs on, and that model's inputs (in the protocol's order).
MODEL_OF = {PIXELS: "full", OBFUSCATED_PIXELS: "full", EMBEDDING: "tail", PATCHED: "patched", REPAIRED: "repaired"}
MODEL_INPUTS = {
    "full": ("pixels",),
    "tail": ("embedding",),
    "patched": ("pixels", "patch_cells", "patch_channels", "patch_values"),
    "repaired": ("pixels", "region_cells"),
}


@dataclass(frozen=True)
class Payload:
    """One chunk's data as sent to a server; a PATCHED payload also carries its feature patch, a
    REPAIRED one its regions' cells ((K,) int32 flat indices of the padded chunk's cell grid)."""

    tile_index: int
    kind: str
    data: np.ndarray
    patch: FeaturePatch | None = None
    cells: np.ndarray | None = None

    @property
    def nbytes(self) -> int:
        patch = self.patch.nbytes if self.patch is not None else 0
        return int(self.data.nbytes) + patch + (int(self.cells.nbytes) if self.cells is not None else 0)

    @property
    def model(self) -> str:
        """Which server model runs it: whole embeddings the tail, pixels with patches the patched
        model, any other pixels the full model."""
        return MODEL_OF[self.kind]

    @property
    def batch_key(self) -> tuple:
        """Payloads with equal keys stack into one call: same model and shape. A patched chunk goes
        alone (the patched and repaired models take one chunk per call)."""
        if self.patch is not None or self.cells is not None:
            return (self.model, "chunk", self.tile_index)
        return (self.model, self.data.shape)

    def tensors(self) -> dict[str, np.ndarray]:
        """The model's inputs for this payload alone, by name, without the batch axis."""
        if self.cells is not None:
            return {"pixels": self.data, "region_cells": self.cells}
        if self.patch is None:
            return {MODEL_INPUTS[self.model][0]: self.data}
        patch = self.patch
        return {"pixels": self.data, "patch_cells": patch.cells, "patch_channels": patch.channels,
                "patch_values": patch.values}  # fmt: skip


@dataclass(frozen=True)
class WorkBatch:
    """Payloads for one server and one model, all of one ``batch_key``, stacked into one call."""

    model: str
    payloads: tuple[Payload, ...]

    def inputs(self) -> dict[str, np.ndarray]:
        """Each input of the model, the payloads' tensors stacked along a new batch axis."""
        per_payload = [p.tensors() for p in self.payloads]
        return {name: np.stack([t[name] for t in per_payload]) for name in MODEL_INPUTS[self.model]}


@dataclass(frozen=True)
class ServerInfo:
    """A server's name and capacity hint (relative throughput; 1.0 = one reference CPU worker)."""

    name: str
    capacity: float = 1.0


class ServerPool(ABC):
    """Where batches go. ``submit`` returns a future of detections (N, K, 6) float32
    (``models.served_decode``: decoded by the server's graph, a few kB per chunk)."""

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
