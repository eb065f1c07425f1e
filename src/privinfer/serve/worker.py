"""What a server computes: the task model's full pass on pixels, its tail on embeddings, the
patched pass (its head on filled pixels, the client's feature patch written into the cells of the
sensitive regions, then its tail), or the repaired pass (its head on filled pixels, the regions'
cells and a ring around them rewritten from their context, then its tail).

The server never sees the client's detectors, obfuscator or frame: only stacked payloads.
"""

from __future__ import annotations

import numpy as np

from privinfer.errors import ConfigError
from privinfer.models import nanodet
from privinfer.models.served_decode import DEFAULT_DECODE, ServedDecode
from privinfer.serve.runtime import RuntimeOptions, create_runtime


class TileServer:
    """Holds one model runtime (eager torch unless told otherwise) and answers batches."""

    def __init__(
        self,
        device: str = "cpu",
        cut: str = nanodet.DEFAULT_CUT,
        runtime: str = "torch",
        threads: int | None = None,
        decode: ServedDecode = DEFAULT_DECODE,
    ) -> None:
        self.runtime = create_runtime(runtime, RuntimeOptions(device, cut, threads, decode))
        runtime = self.runtime
        self._runners = {"full": runtime.full, "tail": runtime.tail, "patched": runtime.patched,
                         "repaired": runtime.repaired}  # fmt: skip

    @property
    def models(self) -> list[str]:
        return sorted(self._runners)

    def run(self, model: str, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """Detections (N, K, 6) float32 (``models.served_decode``) for a batch sent to ``model``:
        its inputs by name, stacked (``WorkBatch.inputs``)."""
        try:
            runner = self._runners[model]
        except KeyError:
            raise ConfigError(f"unknown server model '{model}'; expected one of {self.models}") from None
        return runner(**inputs)
