"""What an evaluation run measures, from one TOML file plus command-line overrides."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from privinfer.errors import ConfigError
from privinfer.obfuscate import available_obfuscators, obfuscator_class

DEFAULT_OBFUSCATORS: dict[str, dict] = {
    "unaltered": {},
    "gaussian": {"sigma": 1.0, "seed": 0},
    "random-mask": {"drop": 0.5, "seed": 0},
    "pca": {"k": 16},
    "channel-mask": {},  # the shipped trained weights (obfuscate/weights/); --channel-mask FILE for others
    "fill": {},
    "blur": {},
    "mosaic": {},
}


# Entry keys that set the pipeline around the obfuscator, not the obfuscator (`PipelineConfig`).
PIPELINE_SETTINGS = ("fill", "mask_scale")


def obfuscator_entry(label: str, options: dict) -> tuple[str, dict]:
    """The registry name and options of one ``obfuscators`` entry.

    An entry is keyed by the obfuscator's name (``"gaussian": {"sigma": 1.0}``), or, to evaluate
    several settings of one obfuscator in a run (a baseline sweep), by any label with the name in
    ``"obfuscator"``: ``"gaussian sigma=0.3": {"obfuscator": "gaussian", "sigma": 0.3}``. The
    pipeline's ``fill`` and ``mask_scale`` may be given too (``"token telea": {"obfuscator":
    "token", "fill": "telea"}``): they are left out of the options, except ``fill`` for an
    obfuscator that fills itself.
    """
    settings = dict(options)
    kind = settings.pop("obfuscator", label)
    pipeline = {key: settings.pop(key) for key in PIPELINE_SETTINGS if key in settings}
    if "fill" in pipeline and kind in available_obfuscators() and obfuscator_class(kind).takes_fill:
        settings["fill"] = pipeline["fill"]
    return kind, settings


def utility_entry(label: str, options: dict) -> tuple[str, dict, dict]:
    """``obfuscator_entry`` plus the pipeline settings the entry names: what `frame_utility` takes."""
    kind, settings = obfuscator_entry(label, options)
    return kind, settings, {key: options[key] for key in PIPELINE_SETTINGS if key in options}


@dataclass(frozen=True)
class EvaluationConfig:
    # label -> options; see `obfuscator_entry`
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
    # Face identity and re-identification by dlib's face recogniser (assets dlib-face-recognition,
    # dlib-landmarks-5). A full run without them fails; a quick run skips the metric when they are
    # not cached; false skips it always.
    identity: bool = True
    # True mAP on a user's COCO-format data set: the annotation JSON and its image folder, both or
    # neither. Kept as strings (like corpus_root) so that the config is written to JSON as it is.
    coco_annotations: str | None = None
    coco_images: str | None = None

    def __post_init__(self) -> None:
        """Check the obfuscator names and the COCO pair before anything is loaded.

        Raises:
            ConfigError: an unknown obfuscator; only one of the COCO pair is given, or a named file
                or folder does not exist.
        """
        for label, options in self.obfuscators.items():
            kind, _ = obfuscator_entry(label, options)
            if kind not in available_obfuscators():
                raise ConfigError(
                    f"obfuscators: '{label}' names unknown obfuscator '{kind}'; choose from: "
                    f"{', '.join(available_obfuscators())}"
                )
        given = {"coco_annotations": self.coco_annotations, "coco_images": self.coco_images}
        if (self.coco_annotations is None) != (self.coco_images is None):
            missing = next(key for key, value in given.items() if value is None)
            present = next(key for key, value in given.items() if value is not None)
            raise ConfigError(f"{present} is set but {missing} is not: the COCO evaluation needs both (or neither)")
        for key, value in given.items():
            if value is not None:
                object.__setattr__(self, key, str(value))  # a Path from code or the CLI, kept as text
        if self.coco_annotations is not None and not Path(self.coco_annotations).is_file():
            raise ConfigError(f"coco_annotations: no such file: {self.coco_annotations}")
        if self.coco_images is not None and not Path(self.coco_images).is_dir():
            raise ConfigError(f"coco_images: no such folder: {self.coco_images}")

    def quickened(self) -> EvaluationConfig:
        """The CI version: tiny subsets and a few steps, the whole path still runs."""
        from dataclasses import replace

        return replace(self, attack_steps=8, max_train=24, max_test=8, whitebox_images=2, whitebox_steps=3,
                       scene_frames=2, latency_repeats=3, quick=True)  # fmt: skip
