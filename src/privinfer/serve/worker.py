"""What a server computes: the task model's full pass on pixels, or its tail on embeddings.

The server never sees the client's detectors, obfuscator or frame: only stacked payloads.
"""

from __future__ import annotations

import numpy as np

from privinfer.errors import ConfigError
from privinfer.models import nanodet
from privinfer.serve.runtime import RuntimeOptions, create_runtime


class TileServer:
    """Holds one model runtime (eager torch unless told otherwise) and answers batches."""

    def __init__(
        self, device: str = "cpu", cut: str = nanodet.DEFAULT_CUT, runtime: str = "torch", threads: int | None = None
    ) -> None:
        self.runtime = create_runtime(runtime, RuntimeOptions(device, cut, threads))
        self._runners = {"full": self.runtime.full, "tail": self.runtime.tail}

    @property
    def models(self) -> list[str]:
        return sorted(self._runners)

    def run(self, model: str, stacked: np.ndarray) -> np.ndarray:
        """Raw outputs (N, anchors, 124) float32 for a stacked batch sent to ``model`` ('full' or 'tail')."""
        try:
            runner = self._runners[model]
        except KeyError:
            raise ConfigError(f"unknown server model '{model}'; expected one of {self.models}") from None
        return runner(stacked)
