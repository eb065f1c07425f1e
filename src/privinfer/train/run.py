"""`privinfer train`: one alpha point of the channel-mask obfuscator on the privacy corpus."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from privinfer.data.corpus import load_split
from privinfer.train.channel_mask_training import train_channel_mask
from privinfer.train.config import MaskTrainingConfig


def run_training(config: MaskTrainingConfig, device: str = "cpu") -> Path:
    """Train on training persons' face chunks (privacy) and scene frames (utility); returns the weights."""
    if config.quick:
        config = replace(config, steps=min(config.steps, 6), checkpoint_every=3)
    root = Path(config.corpus_root) if config.corpus_root else None
    faces = load_split("faces-train", root).images
    scenes = list(load_split("scenes", root).images)
    return train_channel_mask(config, faces, scenes, device)
