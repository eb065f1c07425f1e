"""What a server computes: the task model's full pass on pixels, or its tail on embeddings.

The server never sees the client's detectors, obfuscator or frame: only stacked payloads.
"""

from __future__ import annotations

import numpy as np
import torch

from privinfer.errors import ConfigError
from privinfer.models import nanodet


class TileServer:
    """Holds one NanoDet (split at ``cut``) and answers batches."""

    def __init__(self, device: str = "cpu", cut: str = nanodet.DEFAULT_CUT) -> None:
        self.device = torch.device(device)
        self.model = nanodet.load_nanodet(self.device, cut)
        self._runners = {"full": self._run_full, "tail": self._run_tail}

    def run(self, model: str, stacked: np.ndarray) -> np.ndarray:
        """Raw outputs (N, anchors, 124) for a stacked batch sent to ``model`` ('full' or 'tail')."""
        try:
            runner = self._runners[model]
        except KeyError:
            raise ConfigError(f"unknown server model '{model}'; expected one of {sorted(self._runners)}") from None
        with torch.inference_mode():
            return runner(stacked).cpu().numpy()

    def _run_full(self, pixels: np.ndarray) -> torch.Tensor:
        return self.model.full(nanodet.normalise(list(pixels), self.device))

    def _run_tail(self, embeddings: np.ndarray) -> torch.Tensor:
        return self.model.tail(torch.from_numpy(embeddings).to(self.device, torch.float32))
