"""`privinfer train`: the learned obfuscators on the privacy corpus.

``token`` fits the template written into a sensitive region's cells; ``repair`` the server's
network that rewrites a filled region's features and a ring around them;
``patch-mask`` gates the region's own features against a reconstruction adversary; ``channel-mask``
masks whole-tile embeddings (the earlier design).
"""

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


def run_patch_training(config, device: str = "cpu") -> Path:
    """`patch-mask`: training persons' face crops (privacy) and windows around the faces the default
    detector finds in scene frames, the held-out persons' videos left out (utility)."""
    from privinfer.train.patch_mask_training import train_patch_mask

    if config.quick:
        config = replace(config, steps=min(config.steps, 4), checkpoint_every=2, face_batch=4, scene_batch=2)
    faces, chunks = _region_training_data(config)
    return train_patch_mask(config, faces, chunks, device)


def run_token_training(config, device: str = "cpu") -> Path:
    """`token`: the same utility data as `run_patch_training`, no adversary."""
    from privinfer.train.token_training import train_token

    if config.quick:
        config = replace(config, steps=min(config.steps, 3), scene_batch=2, crop_batch=2)
    faces, chunks = _region_training_data(config)
    return train_token(config, faces, chunks, device)


def run_repair_training(config, device: str = "cpu") -> Path:
    """`repair`: the same utility data as `run_token_training`, distilled through the server's repair."""
    from privinfer.train.repair_training import train_repair

    if config.quick:
        config = replace(config, steps=min(config.steps, 3), scene_batch=2, crop_batch=2, max_crops=8)
    faces, chunks = _region_training_data(config)
    return train_repair(config, faces, chunks, device)


def _region_training_data(config):
    """Training persons' face crops, less those cut from the photos the frame-level utility is measured
    on, and the scene windows around faces (`train.region_chunks`)."""
    from privinfer.client import detect
    from privinfer.data.people_photos import from_people_photos
    from privinfer.train.region_chunks import scene_chunks

    root = Path(config.corpus_root) if config.corpus_root else None
    split = load_split("faces-train", root)
    faces = split.images[[not from_people_photos(f) for f in split.files]]
    chunks = scene_chunks(
        load_split("scenes", root), config.exclude_scene_files, detect.create("faces", precision="float32")
    )
    if config.quick:
        faces, chunks = faces[:16], chunks[:4]
    return faces, chunks
