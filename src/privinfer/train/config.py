"""Configuration of a channel-mask training run (read and recorded by `privinfer.run_record`)."""

from __future__ import annotations

from dataclasses import dataclass

# Scene files every region training leaves out of its data: the held-out persons' videos, and the
# pictures of the photos the frame-level utility is measured on (`bench.partition_quality.PEOPLE_PHOTOS`).
HELD_OUT_SCENE_FILES: tuple[str, ...] = ("WolfgangLanger", "carphone", "person.jpg", "franck")


@dataclass(frozen=True)
class MaskTrainingConfig:
    """Adversarial training of the channel-mask obfuscator (one point of the alpha sweep)."""

    alpha: float = 10.0  # privacy weight: the one knob of the privacy-utility curve
    budget: float = 0.05  # weight of the mean mask value (pushes channels off)
    steps: int = 600
    batch_size: int = 8
    scene_batch_size: int = 4
    lr_mask: float = 1e-3
    lr_decoder: float = 2e-3
    hidden: int = 64
    seed: int = 0
    checkpoint_every: int = 50
    out_dir: str = "results/train/channel-mask"
    corpus_root: str | None = None  # None: the built corpus in the cache
    quick: bool = False
