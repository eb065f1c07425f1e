"""What every training run does first, in one place: record how to reproduce it, seed it, load the
task model it trains against."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from privinfer.models import nanodet
from privinfer.run_record import write_run_record


@dataclass
class TrainingStart:
    out: Path  # the run's folder: its record, checkpoints and weights
    rng: np.random.Generator  # seeded from the config, for the run's own sampling
    model: nanodet.NanoDet  # the task model, on the run's device


def start_training(config, device: str = "cpu") -> TrainingStart:
    """Write the run record (config.json, environment.json) into ``config.out_dir``, seed torch and
    numpy from ``config.seed`` (in that order, so a run repeats exactly), and load the task model
    on ``device``."""
    out = Path(config.out_dir)
    write_run_record(out, config)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    return TrainingStart(out, rng, nanodet.load_nanodet(device))
