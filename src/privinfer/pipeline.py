"""The private inference pipeline, top-down. Read this file first.

frame -> sensitive detection (held across video frames) -> region of interest -> partition into
chunks (one per server, cut where no known object is; ``--partition grid`` for fixed tiles) sorted
by the RoI x sensitivity policy -> payloads (raw pixels, or obfuscated) -> servers, by a
capacity-aware schedule -> each chunk's detections, decoded by its server -> merged into one frame result, which
also tells the next frame's partition where the objects are (and a guided face detector,
``faces-cascade``, where the persons are).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
import torch

from privinfer.client import detect as sensitive_detectors
from privinfer.client.detect.base import DetectorOptions, SensitiveDetector
from privinfer.client.detect.resolution import MIN_FACE_PX, detection_long_side
from privinfer.client.dispatch import ServerHealth, dispatch, readmit_recovered
from privinfer.client.fill import available_fills
from privinfer.client.head import HEAD_RUNTIMES, ClientHead, create_client_head
from privinfer.client.known_objects import KnownObjects, confident
from privinfer.client.merge import ChunkDetections, merge_chunks
from privinfer.client.partition import DISCOVERY, PARTITIONS, PartitionOptions, PartitionRequest
from privinfer.client.privatize import PreparedChunk, prepare_chunks
from privinfer.client.roi import ROI_PROVIDERS, RoiProvider, create_roi
from privinfer.client.schedule import CapacityModel
from privinfer.client.sensitive_memory import SensitiveMemory
from privinfer.client.tiling import MAX_OVERLAP, MIN_TILE, classify_tiles, grow, pixel_extent, scale_box
from privinfer.errors import ConfigError
from privinfer.models import nanodet
from privinfer.models.served_decode import CLASS_COLUMN, SCORE_COLUMN
from privinfer.obfuscate import Obfuscator, available_obfuscators, create_obfuscator, obfuscator_class
from privinfer.serve import BACKENDS, Payload, RemoteOptions, ServerPool, create_pool
from privinfer.serve.grpc_client import parse_address
from privinfer.serve.protocol import RequestLimits
from privinfer.serve.recording import RecordingPool
from privinfer.stream import Outcome, overlapped, sequential
from privinfer.types import Box, Chunk, Detection, FrameResult, Image, SentChunk, SentFrame, TileRecord, Treatment

MIN_DETECT_SIZE = 64  # below this no detector finds anything useful
# Pixels added around each sensitive box in the shrunk work frame: area resampling spreads a sensitive
# pixel into the next row and column, and at a fractional scale one further (1 px leaked a blend of a
# box's edge at 256/267: tests/test_privacy_audit.py, hypothesis example of a 267x182 frame).
RESAMPLE_MARGIN = 2.0


@dataclass(frozen=True)
class PipelineConfig:
    """Everything that decides how a frame is processed. Validated by ``validate``."""

    # A count of local servers, or remote servers' addresses ("host:port", reached over gRPC).
    servers: int | tuple[str, ...] = 3
    backend: str = "threads"  # local servers: threads or processes
    capacities: tuple[float, ...] | None = None
    # False keeps the capacities at their hints instead of learning speeds from measured calls.
    learn_capacities: bool = True
    token_file: Path | None = None  # bearer token for remote servers
    tls_ca: Path | None = None  # CA certificate(s) to check remote servers' TLS by; None: plain TCP
    server_deadline_s: float = 30.0  # per remote call; a slower server has failed it
    # "repair" sends nothing of a sensitive region but where it is (filled pixels and the region's
    # cells), so its privacy is fill's by construction; the server repairs the features around the
    # region from what it sees. On the photos of people it keeps frame mAP 0.925 and person AP
    # 0.897 of the unprotected frame's, against 0.895 / 0.749 for "token" (1.41x the bytes).
    obfuscator: str = "repair"
    obfuscator_options: dict = field(default_factory=dict)
    # What a sensitive region's pixels become (client/fill.py): inpainted from its surroundings
    # (reading no pixel of any region), or "black". None: the obfuscator's own (the fill its
    # weights were trained with; `fill` itself inpaints, since a black box also disturbs the
    # features around it).
    fill: str | None = None
    # CenterFace on every full-resolution frame. The cheaper person-guided "faces-cascade" misses
    # the smallest faces deface's setting finds (README, Status), so it is not the default.
    sensitive: tuple[str, ...] = ("faces",)
    detector_threshold: float | None = None  # None: each detector's own default
    mask_scale: float = 1.3
    # A face smaller than this many pixels in the sent frame (long side ``work_size``) cannot be
    # recognised; sensitive detection runs at the smallest size that still finds every larger one
    # (client/detect/resolution.py), so its cost follows the work size, not the input's size.
    min_face: float = MIN_FACE_PX
    # Sensitive detection sees the frame shrunk to this long side (like deface's --scale) instead;
    # 0: full resolution; None: chosen from ``work_size`` and ``min_face`` (native when work_size is).
    detect_size: int | None = None
    roi: str = "frame"
    roi_options: dict = field(default_factory=dict)
    # How the frame is cut into chunks: "content" (one chunk per server, no known object cut; see
    # partition.py) or "grid" (fixed tiles of ``tile`` px with ``overlap``, for comparison).
    partition: str = "content"
    edge_context: int = PartitionOptions.edge_context
    object_context: int = PartitionOptions.object_context
    min_gain: float = PartitionOptions.min_gain
    # Frames where no object is known yet (a photo, a stream's first frame, a scene cut, every
    # ``discover_every`` frames): "whole" sends the whole RoI to one server, "blind" splits anyway.
    discovery: str = "blind"
    discover_every: int = 30
    tile: int = 256
    overlap: float = 0.2
    # Frames are processed with their long side at most this many pixels (the model's native
    # scale); None keeps full resolution (more tiles, smaller objects found).
    work_size: int | None = 416
    hold_frames: int = 5
    score_threshold: float = 0.35
    cut: str = nanodet.DEFAULT_CUT
    device: str = "cpu"
    # How the client computes embeddings of sensitive tiles: onnxruntime (CPU; torch on a GPU
    # device) or eager torch. Same numbers within client.head.HEAD_TOLERANCE.
    client_runtime: str = "onnxruntime"
    # Keep every payload that leaves the client with where its chunk was cut from (FrameResult.sent):
    # what `--out` shows as NAME_sent.jpg. Off by default: it holds a frame's payloads until the next.
    record_sent: bool = False

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
        self.model = nanodet.load_nanodet(config.device, config.cut, share_weights=True)  # never trained here
        self.head: ClientHead = create_client_head(config.client_runtime, self.model)
        self.obfuscator: Obfuscator = create_obfuscator(config.obfuscator, **self._obfuscator_options())
        self.fill = config.fill or self.obfuscator.preferred_fill
        self.pool = pool or create_pool(
            config.backend, config.servers, _listed(config.capacities), config.device, self._remote_options()
        )
        # Recorded at the pool, the boundary every payload crosses: resends included, nothing recomputed.
        self.recorder = RecordingPool(self.pool) if config.record_sent else None
        if self.recorder is not None:
            self.pool = self.recorder
        self.capacity = CapacityModel.from_hints({s.name: s.capacity for s in self.pool.servers()})
        self.capacity.learning = config.learn_capacities
        self.health = health or ServerHealth()
        for server in self.pool.unready():  # not answering at the start: out until a probe finds it
            self.capacity.drop(server)
            self.health.failed(server)
        self.memory = SensitiveMemory(config.hold_frames)
        self.known = KnownObjects(config.discover_every)
        self.partition = self._partition()
        self.decode_options = nanodet.DecodeOptions(
            score_threshold=config.score_threshold, person_score_threshold=self._person_hint()
        )
        self._frames = 0
        self._warm_up()

    @classmethod
    def from_config(cls, config: PipelineConfig | None = None, **overrides) -> Pipeline:
        """Build from a config, with keyword overrides: ``Pipeline.from_config(servers=2)``."""
        base = config or PipelineConfig()
        return cls(PipelineConfig(**{**base.__dict__, **overrides}))

    def __call__(self, frame: np.ndarray | Image, frame_index: int | None = None) -> FrameResult:
        return self.finish(self.prepare(frame, frame_index))

    def prepare(self, frame: np.ndarray | Image, frame_index: int | None = None) -> PreparedFrame:
        """The client's first stage: the frame shrunk to the work size and its sensitive regions
        detected. ``finish`` does the rest. In a stream (``privinfer.stream``) frame t+1 is
        prepared while frame t is at the servers: call ``prepare`` in frame order, and ``finish``
        in the same order; neither may run twice at once."""
        rgb = frame.pixels if isinstance(frame, Image) else frame
        index = self._frames if frame_index is None else frame_index
        self._frames = index + 1
        height, width = rgb.shape[:2]
        clock = _Clock()

        scale = _shrink_scale(width, height, self.config.work_size)
        detect_scale = _shrink_scale(width, height, self.detect_side(width, height)) if self.detectors else 1.0
        # One pass over a large input: the detection copy is shrunk from it, and the work frame
        # from that copy when it is larger (a 4K frame is read once, not twice).
        seen = _shrunk(rgb, detect_scale)
        work = _shrunk_to(seen if detect_scale > scale else rgb, _scaled_size(width, height, scale))
        # A discovery frame knows nothing of the previous one (a scene cut, a refresh). Otherwise a
        # person-guided face detector searches where the previous frame's persons were: those are
        # only known once that frame is finished (``guided`` detectors are therefore not overlapped).
        discovery = self.known.discovery(work)
        clock.lap("shrink")

        found = self._detect_sensitive(seen, detect_scale, width, height, None if discovery else self.known.objects())
        clock.lap("detect")
        return PreparedFrame(index, width, height, scale, work, discovery, found, clock)

    @property
    def guided(self) -> bool:
        """Whether a sensitive detector searches where the previous frame's objects are: then a
        frame's detection needs the previous frame finished, and a stream cannot overlap them."""
        return any(type(d).detect_known is not SensitiveDetector.detect_known for d in self.detectors)

    @property
    def overlaps_streams(self) -> bool:
        """Whether a video should have frame t+1 detected while frame t is at the servers: only when
        the servers are other machines (host:port addresses). Local servers run on the client's own
        cores, so the two stages only slow each other: on a 2-core machine the overlap gave 0.98x the
        throughput and a worse p95 latency (174.5 against 110.0 ms; docs/sensitive-detection.md)."""
        return not self.guided and not isinstance(self.config.servers, int)

    def stream(self, frames: Iterable[tuple[int, np.ndarray]], overlap: bool = True) -> Iterator[Outcome]:
        """(index, RGB frame) pairs of one video through the pipeline, each frame's detection
        overlapping the previous frame's servers (``privinfer.stream``; not for a ``guided``
        detector, nor with ``overlap`` False). Yields an ``Outcome`` per frame, in order, whose
        ``item`` is the pair and ``result`` the ``FrameResult`` (or ``error``)."""
        run = overlapped if overlap and not self.guided else sequential
        return run(frames, lambda pair: self.prepare(pair[1], pair[0]), self.finish)

    def finish(self, frame: PreparedFrame) -> FrameResult:
        """The rest of the flow for a prepared frame: partition, privatize, servers, merge."""
        index, width, height, scale, work, clock = (
            frame.index, frame.width, frame.height, frame.scale, frame.work, frame.clock,
        )  # fmt: skip
        clock.lap("wait")  # 0 unless the frame was prepared ahead, while the previous one was at the servers
        # What the previous frame found, or None on a discovery frame: the partition cuts around it.
        known = None if frame.discovery else self.known.objects()
        sensitive = self.memory.update(index, frame.sensitive)

        roi = self.roi_provider.roi(index, width, height)
        roi_work = [scale_box(b, scale) for b in roi]
        # A margin: resampling spreads a sensitive pixel into its neighbours (RESAMPLE_MARGIN).
        sensitive_work = [grow(scale_box(d.box, scale), RESAMPLE_MARGIN) for d in sensitive]
        chunks = self._chunks(work, roi_work, sensitive_work, scale, known)
        clock.lap("partition")

        prepared = prepare_chunks(
            _outside_blanked(work, roi_work), chunks, sensitive_work, self.obfuscator, self.head, self.fill
        )
        clock.lap("obfuscate")

        work_pixels = {p.chunk.index: float(np.prod(p.input_shape)) for p in prepared}
        if self.recorder is not None:
            self.recorder.drain()  # only this frame's sends (a probe's or an earlier frame's are not)
        outputs = dispatch([p.payload for p in prepared], self.pool, self.capacity, self.health, work_pixels)
        clock.lap("servers")

        decoded = [(p, self._chunk_detections(p, outputs[p.chunk.index].detections)) for p in prepared]
        threshold = self.config.score_threshold
        found = merge_chunks(
            [ChunkDetections(p.chunk.box, p.chunk.owned, [d for d in ds if d.score >= threshold]) for p, ds in decoded],
            self.decode_options.iou_threshold,
        )  # fmt: skip
        detections = [replace(d, box=scale_box(d.box, 1 / scale).clipped(width, height)) for d in found]
        # Below the threshold only persons are decoded, and only for a face detector that searches their heads.
        weak = [replace(d, box=scale_box(d.box, 1 / scale).clipped(width, height))
                for _, ds in decoded for d in ds if d.score < threshold]  # fmt: skip
        self.roi_provider.observe(index, detections)
        self.known.observe(detections, weak)
        clock.lap("merge")

        sent_by_chunk = {p.chunk.index: p for p in prepared}
        records = [self._record(chunk, sent_by_chunk.get(chunk.index), outputs, scale) for chunk in chunks]
        records += [
            TileRecord(box, Treatment.DISCARDED, None, None, 0, None)
            for box in self._uncovered(chunks, scale, width, height)
        ]
        sent = self._sent(work, chunks) if self.recorder is not None else None
        return FrameResult(index, detections, sensitive, records, clock.timings(), roi, sent)

    def reset(self) -> None:
        """Forget video state (held sensitive boxes, tracked RoI, known objects): call between unrelated images."""
        self.memory = SensitiveMemory(self.config.hold_frames)
        self.known = KnownObjects(self.config.discover_every)
        self.roi_provider = create_roi(self.config.roi, **self.config.roi_options)

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------ helpers

    def _warm_up(self) -> None:
        """Run the client-side model and the final selection once, so the first real frame does
        not pay torch's one-time set-up (hundreds of ms on a CPU)."""
        size = self.config.input_size
        self.head([np.zeros((size, size, 3), np.uint8)])
        self._chunk_detections(None, np.array([[0, 0, 1, 1, 1.0, 0]], np.float32))

    def _partition(self):
        config = self.config
        if config.partition == "grid":
            return PARTITIONS["grid"](config.tile, config.overlap)
        options = PartitionOptions(
            edge_context=config.edge_context, object_context=config.object_context, min_gain=config.min_gain
        )
        return PARTITIONS["content"](options)

    def _chunks(
        self, work: np.ndarray, roi: list[Box], sensitive: list[Box], scale: float, known: list[Detection] | None
    ) -> list[Chunk]:
        """This frame's chunks with their treatments, partitioned by what is known of its objects
        (None: a discovery frame)."""
        height, width = work.shape[:2]
        readmit_recovered(self.pool, self.capacity, self.health)  # a recovered server gets a chunk now
        # Megapixels per second: a capacity work unit is 1e5 pixels of full model pass.
        capacity = self.capacity
        speeds = tuple(0.1 / max(spu, 1e-9) for spu in capacity.seconds_per_unit.values())
        calls = tuple(capacity.call_cost(server) for server in capacity.servers)
        known_boxes = confident(known or ())
        objects = tuple(scale_box(d.box, scale) for d in known_boxes)
        request = PartitionRequest(
            width, height, tuple(roi), objects + tuple(sensitive), speeds or (1.0,), calls if speeds else (),
            capacity.noise(),
        )  # fmt: skip
        if not known_boxes:  # nothing known to cut around: split as a discovery frame is
            request = DISCOVERY[self.config.discovery](request, sensitive)
        geometry = self.partition(request)
        return classify_tiles([g.box for g in geometry], roi, sensitive, [g.core for g in geometry])

    def _uncovered(self, chunks: list[Chunk], scale: float, width: int, height: int) -> list[Box]:
        """The frame outside every chunk, in frame pixels: it never leaves the client (its record)."""
        if not chunks:
            return [Box(0, 0, width, height)]
        covered = Box(
            min(c.box.x1 for c in chunks), min(c.box.y1 for c in chunks),
            max(c.box.x2 for c in chunks), max(c.box.y2 for c in chunks),
        )  # fmt: skip
        return [
            scale_box(b, 1 / scale).clipped(width, height)
            for b in _outside(covered, *_scaled_size(width, height, scale))
        ]

    def detect_side(self, width: int, height: int) -> int | None:
        """The long side a width x height frame's sensitive detection runs at (None: native)."""
        config = self.config
        if config.detect_size is not None:
            return config.detect_size or None
        return detection_long_side(width, height, config.work_size, config.min_face, MIN_DETECT_SIZE)

    def _detect_sensitive(
        self, seen: np.ndarray, scale: float, width: int, height: int, known: list[Detection] | None
    ) -> list[Detection]:
        """Every detector's sensitive boxes on ``seen`` (the width x height frame shrunk by
        ``scale`` to ``detect_side``), in frame pixels. ``known``: the previous frame's detections
        (frame pixels), None on a discovery frame."""
        if scale != 1 and known is not None:
            known = [replace(d, box=scale_box(d.box, scale)) for d in known]
        found = [d for detector in self.detectors for d in detector(seen, known)]
        if scale == 1:
            return found
        return [replace(d, box=scale_box(d.box, 1 / scale).clipped(width, height)) for d in found]

    def _person_hint(self) -> float | None:
        """The weakest person score a sensitive detector asks for, when below the task threshold."""
        wanted = [d.person_score for d in self.detectors if d.person_score is not None]
        lowest = min(wanted, default=None)
        return lowest if lowest is not None and lowest < self.config.score_threshold else None

    def _remote_options(self) -> RemoteOptions:
        config = self.config
        return RemoteOptions(config.token_file, config.tls_ca, config.server_deadline_s)

    def _obfuscator_options(self) -> dict:
        options = dict(self.config.obfuscator_options)
        if self.config.fill is not None and obfuscator_class(self.config.obfuscator).takes_fill:
            options.setdefault("fill", self.config.fill)
        if self.config.obfuscator == "pca" and "basis" not in options:
            from privinfer.obfuscate.pca_fitting import default_basis

            options["basis"] = default_basis(self.model, self.config.input_size, options.pop("k", 16))
        return options

    def _chunk_detections(self, prepared: PreparedChunk | None, answer: np.ndarray) -> list[Detection]:
        """A chunk's answer (its server's detections in chunk pixels) thresholded and NMS'd as the
        model's own decoding does, in work-frame pixels, clipped to the chunk (None: at the origin)."""
        found = torch.from_numpy(np.ascontiguousarray(answer, dtype=np.float32))
        boxes, scores, classes = nanodet.select(
            found[:, :4], found[:, SCORE_COLUMN], found[:, CLASS_COLUMN].long(), self.decode_options
        )
        box = prepared.chunk.box if prepared is not None else Box(0, 0, 1, 1)
        offset = np.array([box.x1, box.y1] * 2, dtype=np.float32)
        return [
            Detection(_clipped_to(Box(*map(float, b + offset)), box), nanodet.COCO_CLASSES[int(c)], float(s))
            for b, s, c in zip(boxes, scores, classes, strict=True)
        ]

    def _sent(self, work: np.ndarray, chunks: list[Chunk]) -> SentFrame:
        """This frame's recorded payloads, grouped by chunk in the order first sent, each placed at
        its chunk's box and labelled with every server it was handed to."""
        boxes = {chunk.index: chunk.box for chunk in chunks}
        payloads: dict[int, Payload] = {}
        servers: dict[int, list[str]] = {}
        for server, payload in self.recorder.drain():
            payloads.setdefault(payload.tile_index, payload)
            servers.setdefault(payload.tile_index, []).append(server)
        sent = tuple(SentChunk(boxes[i], tuple(servers[i]), payloads[i]) for i in payloads)
        return SentFrame(work.shape[1], work.shape[0], sent)

    def _record(self, chunk: Chunk, sent: PreparedChunk | None, outputs, scale: float) -> TileRecord:
        frame_box = scale_box(chunk.box, 1 / scale)
        if sent is None:
            return TileRecord(frame_box, Treatment.DISCARDED, None, None, 0, None)
        obfuscator = self.obfuscator.name if chunk.treatment == Treatment.PRIVATIZED else None
        server = outputs[chunk.index].server
        payload, answer = sent.payload, outputs[chunk.index]
        patch, region_cells = payload.patch, payload.cells
        cells = len(patch.cells) if patch is not None else 0 if region_cells is None else len(region_cells)
        return TileRecord(
            frame_box, chunk.treatment, obfuscator, server, payload.nbytes, payload.kind, cells, answer.nbytes
        )


@dataclass
class PreparedFrame:
    """A frame after ``Pipeline.prepare``: shrunk to the work size, its sensitive regions found
    (frame pixels, before they are held across frames), the clock of its stages so far."""

    index: int
    width: int
    height: int
    scale: float  # work pixels per frame pixel
    work: np.ndarray
    discovery: bool
    sensitive: list[Detection]
    clock: _Clock


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
    if config.fill is not None and config.fill not in available_fills():
        yield f"--fill '{config.fill}' is unknown; choose from: {', '.join(available_fills())}"
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
    if not 1 <= config.mask_scale < math.inf:
        yield f"--mask-scale {config.mask_scale}: must be at least 1 (it grows sensitive boxes)"
    if config.partition not in PARTITIONS:
        yield f"--partition '{config.partition}' is unknown; choose from: {', '.join(sorted(PARTITIONS))}"
    if config.discovery not in DISCOVERY:
        yield f"--discovery '{config.discovery}' is unknown; choose from: {', '.join(sorted(DISCOVERY))}"
    if not (config.edge_context >= 0 and config.object_context >= 0):
        yield f"--context {config.edge_context},{config.object_context}: context pixels must be 0 or more"
    if not 0 <= config.min_gain < 1:
        yield f"min gain {config.min_gain} must be at least 0 and below 1"
    if not config.discover_every >= 0:
        yield f"--discover-every {config.discover_every}: must be 0 (never) or more frames"
    if config.roi not in ROI_PROVIDERS:
        yield f"--roi-mode '{config.roi}' is unknown; choose from: {', '.join(sorted(ROI_PROVIDERS))}"
    max_tile = RequestLimits().max_side  # what a `privinfer serve` accepts by default
    if not MIN_TILE <= config.tile <= max_tile:
        yield f"--tile {config.tile}: tile size must be between {MIN_TILE} and {max_tile} pixels"
    if not 0 <= config.overlap <= MAX_OVERLAP:
        yield f"--overlap {config.overlap}: tile overlap must be between 0 and {MAX_OVERLAP}"
    if config.work_size is not None and not config.work_size >= MIN_TILE:
        yield f"--work-size {config.work_size}: must be at least {MIN_TILE} pixels (0 on the command line: native)"
    if config.detect_size is not None and not (config.detect_size == 0 or config.detect_size >= MIN_DETECT_SIZE):
        yield f"--detect-size {config.detect_size}: must be at least {MIN_DETECT_SIZE} pixels, or 0 for native"
    if not 0 < config.min_face < math.inf:
        yield f"--min-face {config.min_face}: must be a positive number of pixels (in the sent frame)"
    if config.client_runtime not in HEAD_RUNTIMES:
        yield f"--client-runtime '{config.client_runtime}' is unknown; choose from: {', '.join(sorted(HEAD_RUNTIMES))}"
    if not config.hold_frames >= 0:
        yield f"--hold-frames {config.hold_frames}: must be 0 or more"


def _shrink_scale(width: int, height: int, limit: int | None) -> float:
    """The factor that brings the long side down to ``limit`` (1 when it is within it, or no limit)."""
    return 1.0 if limit is None or max(width, height) <= limit else limit / max(width, height)


def processed_size(width: int, height: int, limit: int | None) -> tuple[int, int]:
    """The (width, height) the pipeline works on a width x height frame at: its long side brought
    down to ``limit`` (None: native), as the pipeline shrinks it."""
    return _scaled_size(width, height, _shrink_scale(width, height, limit))


def _scaled_size(width: int, height: int, scale: float) -> tuple[int, int]:
    if scale == 1:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


def _shrunk(rgb: np.ndarray, scale: float) -> np.ndarray:
    """``rgb`` resized by ``scale`` (area averaging), or itself when the scale is 1."""
    if scale == 1:
        return rgb
    height, width = rgb.shape[:2]
    return cv2.resize(rgb, _scaled_size(width, height, scale), interpolation=cv2.INTER_AREA)


def _shrunk_to(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``rgb`` resized to ``size`` (width, height) by area averaging, or itself when it has that size."""
    if (rgb.shape[1], rgb.shape[0]) == size:
        return rgb
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def _clipped_to(box: Box, bounds: Box) -> Box:
    return Box(
        min(max(box.x1, bounds.x1), bounds.x2), min(max(box.y1, bounds.y1), bounds.y2),
        min(max(box.x2, bounds.x1), bounds.x2), min(max(box.y2, bounds.y1), bounds.y2),
    )  # fmt: skip


def _outside(covered: Box, width: int, height: int) -> list[Box]:
    """The frame [0, width) x [0, height) minus ``covered``, as up to four boxes."""
    parts = [
        Box(0, 0, width, covered.y1), Box(0, covered.y2, width, height),
        Box(0, covered.y1, covered.x1, covered.y2), Box(covered.x2, covered.y1, width, covered.y2),
    ]  # fmt: skip
    return [p for p in parts if p.width > 0 and p.height > 0]


def _outside_blanked(work: np.ndarray, roi: list[Box]) -> np.ndarray:
    """The work frame with every pixel outside the RoI black (discarded: it never leaves the client);
    the frame itself when the RoI holds all of it."""
    height, width = work.shape[:2]
    inside = np.zeros((height, width), dtype=bool)
    for box in roi:
        x1, y1, x2, y2 = pixel_extent(box)
        inside[max(y1, 0) : max(y2, 0), max(x1, 0) : max(x2, 0)] = True
    if inside.all():
        return work
    blanked = work.copy()
    blanked[~inside] = 0
    return blanked


def _listed(values: tuple[float, ...] | None) -> list[float] | None:
    return list(values) if values is not None else None
