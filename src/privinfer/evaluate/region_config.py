"""What a region-level evaluation measures (`privinfer evaluate --level region`), from TOML."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from privinfer.errors import ConfigError
from privinfer.evaluate.config import obfuscator_entry
from privinfer.obfuscate import available_obfuscators

DEFAULT_REGION_OBFUSCATORS: dict[str, dict] = {
    "unaltered": {},  # first: its strong attacker is the known-obfuscator inversion attack's decoder
    "patch-mask": {},
    "patch-mask pooled": {"obfuscator": "patch-mask", "pool": True},
    "channel-mask": {},
    "gaussian": {"sigma": 1.0, "seed": 0},
    "random-mask": {"drop": 0.5, "seed": 0},
    "pca": {"k": 16},
    "blur": {},
    "mosaic": {},
}


@dataclass(frozen=True)
class RegionEvaluationConfig:
    obfuscators: dict = field(default_factory=lambda: dict(DEFAULT_REGION_OBFUSCATORS))
    # Obfuscators measured on whole frames only, not attacked (the report says so): a cheaper run
    # for settings whose frame-level utility already puts them behind an attacked one.
    utility_only: dict = field(default_factory=dict)
    chunk: int = 128
    max_train: int = 2000  # training persons' face crops (all of the corpus's 1634), plus flips
    max_natural: int = 800
    # Held-out crops per person at most: one man is 472 of the 616 corpus test crops, and a
    # per-person cap keeps every score from being mostly about him.
    max_per_person: int = 40
    attack_max_steps: int = 2000
    attack_batch: int = 32
    attack_eval_every: int = 100
    attack_patience: int = 3
    whitebox_images: int = 6
    whitebox_steps: int = 150
    servers: int = 2  # frame-level utility: the private pipeline over this many servers
    photos: int | None = None  # people photos for frame-level utility (None: all cached)
    seed: int = 0
    out_dir: str = "results"
    corpus_root: str | None = None
    identity: bool = True
    quick: bool = False

    def __post_init__(self) -> None:
        """Raises ConfigError for an unknown obfuscator, or ``unaltered`` missing or not first."""
        labels = list(self.obfuscators)
        for label, options in {**self.obfuscators, **self.utility_only}.items():
            kind, _ = obfuscator_entry(label, options)
            if kind not in available_obfuscators():
                raise ConfigError(f"obfuscators: '{label}' names unknown obfuscator '{kind}'; choose from: "
                                  f"{', '.join(available_obfuscators())}")  # fmt: skip
        if not labels or labels[0] != "unaltered":
            raise ConfigError("obfuscators: 'unaltered' must come first (the inversion attack decodes with its "
                              "attacker)")  # fmt: skip

    def quickened(self) -> RegionEvaluationConfig:
        """The CI version: tiny subsets and a few steps; the whole path still runs."""
        return replace(self, max_train=24, max_natural=16, max_per_person=2, attack_max_steps=6,
                       attack_batch=8, attack_eval_every=3, whitebox_images=2, whitebox_steps=2, photos=2,
                       quick=True)  # fmt: skip
