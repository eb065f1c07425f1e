"""What an evaluation run measures, from one TOML file plus command-line overrides."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_OBFUSCATORS: dict[str, dict] = {
    "unaltered": {},
    "gaussian": {"sigma": 1.0, "seed": 0},
    "random-mask": {"drop": 0.5, "seed": 0},
    "pca": {"k": 16},
    "channel-mask": {},  # the shipped trained weights (obfuscate/weights/); --channel-mask FILE for others
    "blur": {},
    "mosaic": {},
}


@dataclass(frozen=True)
class EvaluationConfig:
    obfuscators: dict = field(default_factory=lambda: dict(DEFAULT_OBFUSCATORS))
    chunk: int = 128
    attack_steps: int = 800
    attack_batch: int = 16
    max_train: int = 1500  # face chunks for the attackers (plus as many natural photos)
    max_test: int = 200
    whitebox_images: int = 6
    whitebox_steps: int = 150
    scene_frames: int = 12
    latency_repeats: int = 30
    seed: int = 0
    out_dir: str = "results"
    corpus_root: str | None = None  # None: the built corpus in the cache
    quick: bool = False

    def quickened(self) -> EvaluationConfig:
        """The CI version: tiny subsets and a few steps, the whole path still runs."""
        from dataclasses import replace

        return replace(self, attack_steps=8, max_train=24, max_test=8, whitebox_images=2, whitebox_steps=3,
                       scene_frames=2, latency_repeats=3, quick=True)  # fmt: skip
