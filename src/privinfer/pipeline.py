"""The private inference pipeline, top-down. Read this file first.

frame -> sensitive detection (held across video frames) -> region of interest -> tiles sorted
by the RoI x sensitivity policy -> payloads (raw pixels, or obfuscated) -> servers, by a
capacity-aware schedule -> raw outputs decoded per tile -> merged into one frame result.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
import torch

from privinfer import detect as sensitive_detectors
from privinfer.client_head import HEAD_RUNTIMES, ClientHead, create_client_head
from privinfer.detect.base import DetectorOptions, SensitiveDetector
from privinfer.dispatch import ServerHealth, dispatch
from privinfer.errors import ConfigError
from privinfer.merge import merge_detections
from privinfer.models import nanodet
from privinfer.obfuscate import Obfuscator, available_obfuscators, create_obfuscator
from privinfer.privatize import PreparedTile, prepare_tiles
from privinfer.roi import ROI_PROVIDERS, RoiProvider, create_roi
from privinfer.schedule import CapacityModel
from privinfer.sensitive_memory import SensitiveMemory
from privinfer.serve import BACKENDS, RemoteOptions, ServerPool, create_pool
from privinfer.serve.grpc_client import parse_address
from privinfer.serve.protocol import RequestLimits
from privinfer.tiling import MAX_OVERLAP, MIN_TILE, classify_tiles, grow, scale_box, tile_grid
from privinfer.types import Box, Detection, FrameResult, Image, TileRecord, Treatment

MIN_DETECT_SIZE = 64  # below this no detector finds anything useful


@dataclass(frozen=True)
class PipelineConfig:
    """Everything that decides how a frame is processed. Validated by ``validate``."""

    # A count of local servers, or remote servers' addresses ("host:port", reached over gRPC).
    servers: int | tuple[str, ...] = 3
    backend: str = "threads"  # local servers: threads or processes
    capacities: tuple[float, ...] | None = None
    token_file: Path | None = None  # bearer token for remote servers
    tls_ca: Path | None = None  # CA certificate(s) to check remote servers' TLS by; None: plain TCP
    server_deadline_s: float = 30.0  # per remote call; a slower server has failed it
    obfuscator: str = "channel-mask"
    obfuscator_options: dict = field(default_factory=dict)
    sensitive: tuple[str, ...] = ("faces",)
    detector_threshold: float | None = None  # None: each detector's own default
    mask_scale: float = 1.3
    # Sensitive detection sees the frame shrunk to this long side (like deface's --scale): the
    # detector's cost falls with the area, small faces are lost first. None: full resolution.
    detect_size: int | None = None
    roi: str = "frame"
    roi_options: dict = field(default_factory=dict)
    tile: int = 256
    overlap: float = 0.2
    # Frames are processed with their long side at most this many pixels (the model's native
    # scale); None keeps full resolution (more tiles, smaller objects found).
    work_size: int | None = 416
    hold_frames: int = 5
    score_threshold: float = 0.35
    merge_threshold: float = 0.5
    # Weaker detections (kept when score_threshold is lower, as for mAP) never grow a merged box.
    merge_grow_min_score: float = 0.35
    cut: str = nanodet.DEFAULT_CUT
    device: str = "cpu"
    # How the client computes embeddings of sensitive tiles: onnxruntime (CPU; torch on a GPU
    # device) or eager torch. Same numbers within client_head.HEAD_TOLERANCE.
    client_runtime: str = "onnxruntime"

    def validate(self) -> PipelineConfig:
        """Check every option before anything is loaded.

        Raises:
            ConfigError: the first bad option, named as the command line spells it (``--tile``),
                with the valid names or range.
        """
        for problem in _config_problems(self):
            raise ConfigError(problem)
        return self

    @property
    def input_size(self) -> int:
        """Model input side for every tile: the tile size rounded up to a multiple of 32."""
        return 32 * math.ceil(self.tile / 32)


class Pipeline:
    """Call it on frames: ``result = pipeline(rgb)``. Close it (or use ``with``) to stop servers."""

    def __init__(
        self,
        config: PipelineConfig,
        pool: ServerPool | None = None,
        detectors: list[SensitiveDetector] | None = None,
        health: ServerHealth | None = None,
    ) -> None:
        """``pool`` and ``detectors`` replace the ones the config names (remote servers, custom
        detectors); ``health`` replaces the default back-off of failed servers (2 s, doubling up to 30 s)."""
        self.config = config.validate()
        options = DetectorOptions(config.detector_threshold, config.mask_scale)
        self.detectors = (
            detectors
            if detectors is not None
            else [sensitive_detectors.create(name, options) for name in config.sensitive]
        )
        self.roi_provider: RoiProvider = create_roi(config.roi, **config.roi_options)
        self.model = nanodet.load_nanodet(config.device, config.cut)
        self.head: ClientHead = create_client_head(config.client_runtime, self.model)
        self.obfuscator: Obfuscator = create_obfuscator(config.obfuscator, **self._obfuscator_options())
        self.pool = pool or create_pool(
            config.backend, config.servers, _listed(config.capacities), config.device, self._remote_options()
        )
        self.capacity = CapacityModel.from_hints({s.name: s.capacity for s in self.pool.servers()})
        self.health = health or ServerHealth()
        for server in self.pool.unready():  # not answering at the start: out until a probe finds it
            self.capacity.drop(server)
            self.health.failed(server)
        self.memory = SensitiveMemory(config.hold_frames)
        self.decode_options = nanodet.DecodeOptions(score_threshold=config.score_threshold)
        self._frames = 0
        self._warm_up()

    @classmethod
    def from_config(cls, config: PipelineConfig | None = None, **overrides) -> Pipeline:
        """Build from a config, with keyword overrides: ``Pipeline.from_config(servers=2)``."""
        base = config or PipelineConfig()
        return cls(PipelineConfig(**{**base.__dict__, **overrides}))

    def __call__(self, frame: np.ndarray | Image, frame_index: int | None = None) -> FrameResult:
        rgb = frame.pixels if isinstance(frame, Image) else frame
        index = self._frames if frame_index is None else frame_index
        self._frames = index + 1
        height, width = rgb.shape[:2]
        clock = _Clock()

        sensitive = self.memory.update(index, self._detect_sensitive(rgb))
        clock.lap("detect")

        scale = _shrink_scale(width, height, self.config.work_size)
        work = _shrunk(rgb, scale)
        roi = self.roi_provider.roi(index, width, height)
        # One pixel of margin: resampling spreads a sensitive pixel into its neighbours.
        sensitive_work = [grow(scale_box(d.box, scale), 1.0) for d in sensitive]
        tiles = classify_tiles(
            tile_grid(work.shape[1], work.shape[0], self.config.tile, self.config.overlap),
            [scale_box(b, scale) for b in roi],
            sensitive_work,
        )
        clock.lap("tile")

        prepared = prepare_tiles(work, tiles, sensitive_work, self.obfuscator, self.head, self.config.input_size)
        clock.lap("obfuscate")

        payloads = [p.payload for p in prepared]
        outputs = dispatch(payloads, self.pool, self.capacity, self.health, self.config.input_size)
        clock.lap("servers")

        detections = merge_detections(
            [d for p in prepared for d in self._tile_detections(p, outputs[p.tile.index].raw, scale, width, height)],
            self.config.merge_threshold,
            self.config.merge_grow_min_score,
        )
        self.roi_provider.observe(index, detections)
        clock.lap("merge")

        sent_by_tile = {p.tile.index: p for p in prepared}
        records = [self._record(tile, sent_by_tile.get(tile.index), outputs, scale) for tile in tiles]
        return FrameResult(index, detections, sensitive, records, clock.timings(), roi)

    def reset(self) -> None:
        """Forget video state (held sensitive boxes, tracked RoI): call between unrelated images."""
        self.memory = SensitiveMemory(self.config.hold_frames)
        self.roi_provider = create_roi(self.config.roi, **self.config.roi_options)

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------ helpers

    def _warm_up(self) -> None:
        """Run the client-side model and decoder once, so the first real frame does not pay
        torch's one-time set-up (hundreds of ms on a CPU)."""
        size = self.config.input_size
        self.head([np.zeros((size, size, 3), np.uint8)])
        anchors = sum((size // s) ** 2 for s in nanodet.STRIDES)
        nanodet.decode(torch.zeros(1, anchors, nanodet.RAW_WIDTH), size, self.decode_options)

    def _detect_sensitive(self, rgb: np.ndarray) -> list[Detection]:
        """Every detector's sensitive boxes, in frame pixels; on a shrunk copy when ``detect_size`` asks."""
        height, width = rgb.shape[:2]
        scale = _shrink_scale(width, height, self.config.detect_size)
        found = [d for detector in self.detectors for d in detector(_shrunk(rgb, scale))]
        if scale == 1:
            return found
        return [replace(d, box=scale_box(d.box, 1 / scale).clipped(width, height)) for d in found]

    def _remote_options(self) -> RemoteOptions:
        config = self.config
        return RemoteOptions(config.token_file, config.tls_ca, config.server_deadline_s)

    def _obfuscator_options(self) -> dict:
        options = dict(self.config.obfuscator_options)
        if self.config.obfuscator == "pca" and "basis" not in options:
            from privinfer.obfuscate.pca_fitting import default_basis

            options["basis"] = default_basis(self.model, self.config.input_size, options.pop("k", 16))
        return options

    def _tile_detections(self, prepared: PreparedTile, raw: np.ndarray, scale: float, width: int, height: int):
        boxes, scores, classes = nanodet.decode(_as_batch(raw), self.config.input_size, self.decode_options)[0]
        if not len(boxes):
            return []
        in_tile = prepared.transform.to_image(boxes)
        offset = np.array([prepared.tile.box.x1, prepared.tile.box.y1] * 2, dtype=np.float32)
        in_frame = (in_tile + offset) / scale
        return [
            Detection(Box(*map(float, b)).clipped(width, height), nanodet.COCO_CLASSES[int(c)], float(s))
            for b, s, c in zip(in_frame, scores, classes, strict=True)
        ]

    def _record(self, tile, sent: PreparedTile | None, outputs, scale: float) -> TileRecord:
        frame_box = scale_box(tile.box, 1 / scale)
        if sent is None:
            return TileRecord(frame_box, Treatment.DISCARDED, None, None, 0, None)
        obfuscator = self.obfuscator.name if tile.treatment == Treatment.PRIVATIZED else None
        server = outputs[tile.index].server
        return TileRecord(frame_box, tile.treatment, obfuscator, server, sent.payload.nbytes, sent.payload.kind)


class _Clock:
    """Per-stage wall-clock laps in milliseconds."""

    def __init__(self) -> None:
        self._start = self._last = time.perf_counter()
        self._laps: dict[str, float] = {}

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self._laps[stage] = (now - self._last) * 1e3
        self._last = now

    def timings(self) -> dict[str, float]:
        return {**self._laps, "total": (time.perf_counter() - self._start) * 1e3}


def _config_problems(config: PipelineConfig) -> Iterator[str]:
    """What is wrong with ``config``, one message per bad option. Range checks are written as
    ``not (ok)`` so that NaN fails them too."""
    count = config.servers if isinstance(config.servers, int) else len(config.servers)
    if isinstance(config.servers, int):
        if count < 1:
            yield f"--servers {count}: need at least one server"
        if config.backend not in BACKENDS:
            yield f"--backend '{config.backend}' is unknown; choose from: {', '.join(sorted(BACKENDS))}"
    elif not config.servers:
        yield "--servers: give a number of local servers or host:port addresses"
    else:
        for address in config.servers:
            try:
                parse_address(address)
            except ConfigError as error:
                yield f"--servers: {error}"
    if config.capacities is not None:
        listed = ",".join(f"{c:g}" for c in config.capacities)
        if len(config.capacities) != count:
            yield f"--capacities {listed}: give {count} capacities, one per server"
        elif not all(0 < c < math.inf for c in config.capacities):
            yield f"--capacities {listed}: every capacity must be a positive number"
    if not 0 < config.server_deadline_s < math.inf:
        yield f"--deadline {config.server_deadline_s}: the server deadline must be a positive number of seconds"
    if config.obfuscator not in available_obfuscators():
        yield f"--obfuscator '{config.obfuscator}' is unknown; choose from: {', '.join(available_obfuscators())}"
    for name in config.sensitive:
        if name not in sensitive_detectors.available():
            choices = ", ".join(sensitive_detectors.available())
            yield f"--sensitive: unknown sensitive detector '{name}'; choose from: {choices}"
    if config.detector_threshold is not None and not 0 <= config.detector_threshold <= 1:
        yield f"--thresh {config.detector_threshold}: the detector threshold must be between 0 and 1"
    if not 0 <= config.score_threshold <= 1:
        yield f"score threshold {config.score_threshold} must be between 0 and 1"
    if not 0 <= config.merge_grow_min_score <= 1:
        yield f"merge grow score {config.merge_grow_min_score} must be between 0 and 1"
    if not 0 < config.merge_threshold <= 1:
        yield f"merge threshold {config.merge_threshold} must be above 0 and at most 1"
    if not 1 <= config.mask_scale < math.inf:
        yield f"--mask-scale {config.mask_scale}: must be at least 1 (it grows sensitive boxes)"
    if config.roi not in ROI_PROVIDERS:
        yield f"--roi-mode '{config.roi}' is unknown; choose from: {', '.join(sorted(ROI_PROVIDERS))}"
    max_tile = RequestLimits().max_side  # what a `privinfer serve` accepts by default
    if not MIN_TILE <= config.tile <= max_tile:
        yield f"--tile {config.tile}: tile size must be between {MIN_TILE} and {max_tile} pixels"
    if not 0 <= config.overlap <= MAX_OVERLAP:
        yield f"--overlap {config.overlap}: tile overlap must be between 0 and {MAX_OVERLAP}"
    if config.work_size is not None and not config.work_size >= MIN_TILE:
        yield f"--work-size {config.work_size}: must be at least {MIN_TILE} pixels (0 on the command line: native)"
    if config.detect_size is not None and not config.detect_size >= MIN_DETECT_SIZE:
        minimum = f"must be at least {MIN_DETECT_SIZE} pixels (0 on the command line: native)"
        yield f"--detect-size {config.detect_size}: {minimum}"
    if config.client_runtime not in HEAD_RUNTIMES:
        yield f"--client-runtime '{config.client_runtime}' is unknown; choose from: {', '.join(sorted(HEAD_RUNTIMES))}"
    if not config.hold_frames >= 0:
        yield f"--hold-frames {config.hold_frames}: must be 0 or more"


def _shrink_scale(width: int, height: int, limit: int | None) -> float:
    """The factor that brings the long side down to ``limit`` (1 when it is within it, or no limit)."""
    return 1.0 if limit is None or max(width, height) <= limit else limit / max(width, height)


def _shrunk(rgb: np.ndarray, scale: float) -> np.ndarray:
    """``rgb`` resized by ``scale`` (area averaging), or itself when the scale is 1."""
    if scale == 1:
        return rgb
    height, width = rgb.shape[:2]
    size = max(1, round(width * scale)), max(1, round(height * scale))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def _as_batch(raw: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(raw))[None]


def _listed(values: tuple[float, ...] | None) -> list[float] | None:
    return list(values) if values is not None else None
