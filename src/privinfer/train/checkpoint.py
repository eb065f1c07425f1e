"""Checkpoints of an adversarial training run: every network and optimiser by name, and the step.

A run writes one every few steps and resumes from the last, so a 2-core CPU can be interrupted
without losing the run. The file is written aside and renamed, so a crash mid-write leaves the
previous checkpoint whole.
"""

from __future__ import annotations

from pathlib import Path

import torch

CHECKPOINT = "checkpoint.pt"


def save_checkpoint(out: Path, step: int, parts: dict) -> None:
    """``parts``: name -> a module or optimiser (anything with ``state_dict``)."""
    state = {"step": step, **{name: part.state_dict() for name, part in parts.items()}}
    partial = out / f"{CHECKPOINT}.part"
    torch.save(state, partial)
    partial.replace(out / CHECKPOINT)


def resume(out: Path, parts: dict, log: str = "losses.csv") -> int:
    """Load ``parts`` from the last checkpoint and return its step; without one, start afresh (the
    old loss log is removed) and return 0."""
    path = out / CHECKPOINT
    if not path.is_file():
        (out / log).unlink(missing_ok=True)
        return 0
    state = torch.load(path, map_location="cpu", weights_only=True)
    for name, part in parts.items():
        part.load_state_dict(state[name])
    return int(state["step"])
