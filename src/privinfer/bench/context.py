"""What every benchmark section shares: the options, the machine, server pools, frame timing.

Sections measure through ``BenchContext.measure_together``: the pipelines they compare take the
frames in turn, frame by frame, so that a change of the machine's load hits them all alike, and a
set of pipelines measured on some frames is measured once per benchmark, whichever sections ask.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from privinfer.bench.frames import FrameSet
from privinfer.bench.privacy import PrivacyReference, load_privacy_reference
from privinfer.client.detect.base import SensitiveDetector
from privinfer.errors import ConfigError
from privinfer.pipeline import Pipeline, PipelineConfig
from privinfer.serve import BACKENDS, ServerPool, create_pool
from privinfer.types import FrameResult

# Frames run first and discarded: torch's first calls, the capacity model learning the servers.
WARMUP_FRAMES = 2
PRIVATE_OBFUSCATOR = PipelineConfig.obfuscator  # what `privinfer run` privatizes with by default


@dataclass(frozen=True)
class BenchOptions:
    """What `privinfer bench` was asked to do.

    frames: frames per measurement (default 100, or 2 with ``quick``); ``servers``: the N of the
    multi-server configurations (local server processes, or threads with ``backend="threads"``).
    threads: the client's torch threads (None: torch's default, every core). On a machine busy with
    other work, torch's threads wait on each other for whole time slices (a 20 ms head call can take
    500 ms with 2 threads on 2 busy cores): 1 keeps such a run's figures meaningful.
    privacy_summary: the `privinfer evaluate` summary whose strong-attacker SSIM is quoted.
    """

    quick: bool = False
    device: str = "cpu"
    out: Path = Path("bench/results")
    only: tuple[str, ...] | None = None
    skip: tuple[str, ...] = ()
    frames: int | None = None
    servers: int = 2
    backend: str = "processes"
    threads: int | None = None
    privacy_summary: Path = Path("results/summary.json")

    @property
    def frame_count(self) -> int:
        return self.frames or (2 if self.quick else 100)

    @property
    def warmup(self) -> int:
        """Frames run and discarded before each measurement (none in a quick run: a smoke test)."""
        return 0 if self.quick else WARMUP_FRAMES

    def validate(self) -> BenchOptions:
        """Raises ConfigError naming the bad option."""
        if self.frames is not None and self.frames < 1:
            raise ConfigError(f"--frames {self.frames}: need at least one frame per measurement")
        if self.servers < 2:
            raise ConfigError(f"--servers {self.servers}: the multi-server alternatives need at least 2")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"--threads {self.threads}: need at least one thread")
        if self.backend not in BACKENDS:
            raise ConfigError(f"--backend '{self.backend}' is unknown; choose from: {', '.join(sorted(BACKENDS))}")
        if self.device.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                raise ConfigError(
                    f"--device {self.device}: torch sees no CUDA device on this machine; use --device cpu"
                )
        elif self.device != "cpu":
            raise ConfigError(f"--device '{self.device}': choose cpu or cuda (cuda:N)")
        return self


def stats(values: Sequence[float]) -> dict[str, float]:
    """Median, 95th percentile and mean of some measurements (ms, bytes...), and how many there were."""
    array = np.asarray(values, dtype=np.float64)
    return {
        "median": float(np.median(array)),
        "p95": float(np.percentile(array, 95)),
        "mean": float(array.mean()),
        "n": len(array),
    }


def machine() -> str:
    """This machine in one line: CPU model, cores, memory."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        memory_kib = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        memory = f", {memory_kib / 2**20:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        memory = ""
    return f"{model}, {os.cpu_count()} CPU cores{memory}, {platform.system()} {platform.release()}"


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return "cpu"


@dataclass(frozen=True)
class Setup:
    """One pipeline to measure: a config on ``servers`` shared local servers (None: the benchmark's N)."""

    config: PipelineConfig
    servers: int | None = None


class Runner(Protocol):
    """Anything measured like a pipeline (a baseline written for the benchmark)."""

    def __call__(self, rgb: np.ndarray) -> FrameResult: ...

    def reset(self) -> None: ...


@dataclass
class BenchContext:
    """Options plus what sections share while the benchmark runs (pools, measurements). Close it."""

    options: BenchOptions
    progress: Callable[[str], None] = print
    privacy: PrivacyReference = field(init=False)
    _pools: dict[int, ServerPool] = field(default_factory=dict, init=False)
    _pipelines: dict[tuple, Pipeline] = field(default_factory=dict, init=False)
    _measured: dict[tuple, list[FrameResult]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.privacy = load_privacy_reference(self.options.privacy_summary)

    @property
    def frame_count(self) -> int:
        return self.options.frame_count

    @property
    def servers(self) -> int:
        return self.options.servers

    def pool(self, count: int) -> ServerPool:
        """``count`` local servers, started once and shared by every section (all close with the context)."""
        if count not in self._pools:
            self.progress(f"starting {count} local server(s) ({self.options.backend})")
            self._pools[count] = create_pool(self.options.backend, count, device=self.options.device)
        return self._pools[count]

    def config(self, obfuscator: str | None = PRIVATE_OBFUSCATOR, **overrides) -> PipelineConfig:
        """A pipeline config on this benchmark's device: privinfer with ``obfuscator`` and the
        default face detector, or (``obfuscator=None``) the same pipeline without privacy."""
        if obfuscator is None:
            base = PipelineConfig(obfuscator="unaltered", sensitive=())
        else:
            base = PipelineConfig(obfuscator=obfuscator, obfuscator_options=self.privacy.options(obfuscator))
        return replace(base, servers=self.servers, device=self.options.device, **overrides)

    def measure_together(self, setups: dict[str, Setup | Runner], frames: FrameSet) -> dict[str, list[FrameResult]]:
        """Each frame's result through each setup, frame by frame: every frame goes through all of
        them in turn (the order rotating) before the next, so that all meet the same load and their
        ratios hold while the machine's load changes. The frames are unrelated (state is reset
        between them). A set whose every ``Setup`` was measured on these frames before is returned
        as it was; otherwise all are measured anew. A ``Runner`` (custom pipeline) is never remembered.
        """
        keys = {name: self._key(s, frames) for name, s in setups.items() if isinstance(s, Setup)}
        if len(keys) == len(setups) and all(key in self._measured for key in keys.values()):
            return {name: self._measured[key] for name, key in keys.items()}
        runners = {
            name: self._pipeline(s.config, s.servers or self.servers) if isinstance(s, Setup) else s
            for name, s in setups.items()
        }
        names = list(runners)
        for rgb in frames.images[: self.options.warmup]:
            for name in names:
                runners[name].reset()
                runners[name](rgb)
        results: dict[str, list[FrameResult]] = {name: [] for name in names}
        for index, rgb in enumerate(frames.images):
            shift = index % len(names)
            for name in names[shift:] + names[:shift]:
                runners[name].reset()
                results[name].append(runners[name](rgb))
        for name, key in keys.items():
            self._measured[key] = results[name]
        return results

    def measure_stream(self, setups: dict[str, Setup], frames: FrameSet) -> dict[str, list[FrameResult]]:
        """Each setup's results on ``frames`` taken as one video stream (state kept from frame to
        frame: held boxes, known objects), frame by frame in turn as ``measure_together`` does.
        Each pipeline starts the stream fresh after its warm-up frames."""
        runners = {name: self._pipeline(s.config, s.servers or self.servers) for name, s in setups.items()}
        names = list(runners)
        for name in names:
            runners[name].reset()
            for index, rgb in enumerate(frames.images[: self.options.warmup]):
                runners[name](rgb, index)
            runners[name].reset()
        results: dict[str, list[FrameResult]] = {name: [] for name in names}
        for index, rgb in enumerate(frames.images):
            shift = index % len(names)
            for name in names[shift:] + names[:shift]:
                results[name].append(runners[name](rgb, index))
        return results

    def measure(
        self,
        config: PipelineConfig,
        frames: FrameSet,
        servers: int | None = None,
        detectors: list[SensitiveDetector] | None = None,
    ) -> list[FrameResult]:
        """``measure_together`` of one pipeline; ``detectors`` replace the ones ``config`` names."""
        if detectors is None:
            return self.measure_together({"one": Setup(config, servers)}, frames)["one"]
        custom = Pipeline(config, pool=self.pool(servers or self.servers), detectors=detectors)
        return self.measure_together({"custom": custom}, frames)["custom"]

    def _key(self, setup: Setup, frames: FrameSet) -> tuple:
        return (repr(setup.config), setup.servers or self.servers, frames.key)

    def _pipeline(self, config: PipelineConfig, servers: int) -> Pipeline:
        """One pipeline per config and server count, kept: building one loads models (about a second)."""
        key = (repr(config), servers)
        if key not in self._pipelines:
            # Not closed by itself: its pool is shared, and closes with the context.
            self._pipelines[key] = Pipeline(config, pool=self.pool(servers))
        return self._pipelines[key]

    def close(self) -> None:
        self._pipelines.clear()
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()

    def __enter__(self) -> BenchContext:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def stage_stats(results: Sequence[FrameResult]) -> dict[str, dict[str, float]]:
    """Per pipeline stage (detect, tile, obfuscate, servers, merge, total): ``stats`` of its ms."""
    return {stage: stats([r.timings_ms[stage] for r in results]) for stage in results[0].timings_ms}


def median_total_ms(results: Sequence[FrameResult]) -> float:
    return float(np.median([r.timings_ms["total"] for r in results]))
