"""An evaluation's results while it runs, on disk: each finished obfuscator is saved at once, so a
run that is stopped resumes where it stopped. Both levels (`evaluate.run`, `evaluate.region_run`)
keep their summary and the strong attacker's reconstructions here, under a key that says which
runs' results may be reused.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch


class PartialResults:
    """``summary`` (label -> figures) and ``pictures`` (label -> reconstructions), loaded from ``out``
    when an earlier run saved them under the same ``key``, else empty."""

    def __init__(self, out: Path, key: str) -> None:
        self.path, self.pictures_path = out / "summary.partial.json", out / "reconstructions.partial.pt"
        self.key = key
        self.summary: dict = {}
        self.pictures: dict[str, torch.Tensor] = {}
        if self.path.is_file():
            saved = json.loads(self.path.read_text())
            if saved.get("config") == self.key:
                self.summary = saved["summary"]
                if self.pictures_path.is_file():
                    self.pictures = torch.load(self.pictures_path, weights_only=True)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({"config": self.key, "summary": self.summary}))
        torch.save(self.pictures, self.pictures_path)

    def finish(self) -> None:
        """Remove what was saved (a run that is not meant to be added to later)."""
        self.path.unlink(missing_ok=True)
        self.pictures_path.unlink(missing_ok=True)
