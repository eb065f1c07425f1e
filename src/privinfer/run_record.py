"""Run records: one TOML file describes a training or evaluation run; command-line flags override
it; the resolved config, the seed and the package versions are written next to the results."""

from __future__ import annotations

import json
import platform
import tomllib
from dataclasses import asdict, fields
from importlib import metadata
from pathlib import Path

from privinfer.errors import ConfigError


def load_config(cls, path: str | Path | None, overrides: dict):
    """Build ``cls`` from a TOML file (optional) and non-None overrides, rejecting unknown keys."""
    values: dict = {}
    if path is not None:
        try:
            values.update(tomllib.loads(Path(path).read_text()))
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise ConfigError(f"cannot read config {path}: {error}") from None
    values.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown config keys {unknown}; known: {sorted(known)}")
    return cls(**values)


def write_run_record(out_dir: Path, config) -> None:
    """config.json + environment.json: what is needed to reproduce the run."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.json").write_text(json.dumps(asdict(config), indent=2))
    packages = {}
    for name in (
        "torch",
        "torchvision",
        "numpy",
        "onnxruntime",
        "scikit-image",
        "dlib-bin",
        "pycocotools",
        "privinfer",
    ):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    environment = {"python": platform.python_version(), "machine": platform.machine(), "packages": packages}
    (out_dir / "environment.json").write_text(json.dumps(environment, indent=2))
