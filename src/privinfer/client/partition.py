"""Where to cut the frame: one chunk per server that gets work, and no known object cut.

Pure functions on boxes and numbers, like SAHI's slicing and Elf's region-proposal partition
(Elf, MobiCom'21): the area holding the region of interest is cut into strips across its long
side, one per server, sized by the servers' speeds; each cut line is moved to the nearest
position that crosses no known object (the previous frame's detections, the sensitive boxes); an
object a cut cannot avoid is held whole by the strip holding its centre, which grows to hold it.

Each chunk has a *core* (its strip: the cores tile the covered area, and the merge keeps a
detection only from the chunk whose core holds its centre) and a *box* (what is sent): the core
plus context. NanoDet's boxes move when their surroundings change, so a chunk carries
``edge_context`` pixels past each cut and ``object_context`` pixels around every object it holds.
Every chunk starts on a multiple of ``align`` (32, the model's coarsest stride) so that it sees the
sampling grid the whole frame sees: away from its edges its features are the whole frame's.

Fewer chunks than servers are used when the predicted time of the frame would not fall by more
than the prediction's own error. The prediction is each chunk's time on its server, its padded
pixels at the server's measured speed plus that server's measured cost per call (transfer of a
few-kB answer included), and the frame waits for the slowest; speeds, per-call costs and the
error (the standard error of the fit's prediction) are learned from every call the servers answer
(``schedule.CapacityModel``: least squares of time on calls and pixels, per server). Before
anything is measured the per-call cost is ``chunk_cost_s`` and the error 0. On top of that, a
split must buy ``min_gain`` (15%) of the predicted time, for utility, not speed: every cut costs
some detection near it (at 0, four 416 px strips kept mAP 0.890 of the whole frame's on photos of
people, against 0.964 for two).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from privinfer.client.known_objects import person_priors
from privinfer.client.tiling import tile_grid, tile_starts
from privinfer.errors import ConfigError
from privinfer.models.nanodet import PAD_MULTIPLE, padded_side
from privinfer.types import Box


@dataclass(frozen=True)
class ChunkGeometry:
    """A chunk before the policy sorts it: ``box`` is sent, ``core`` is what it answers for."""

    box: Box
    core: Box


@dataclass(frozen=True)
class PartitionOptions:
    """How the content-aware partition trades context, balance and chunk count."""

    align: int = PAD_MULTIPLE
    edge_context: int = 64  # pixels sent past each cut line
    object_context: int = 32  # pixels sent around each known object a chunk holds
    # Another chunk must cut the predicted frame time by this share, beyond the prediction's error: each
    # cut costs detections near it (at 0, N=4 split 416 px photos in four and kept mAP 0.890, not 0.964).
    min_gain: float = 0.15
    chunk_cost_s: float = 0.004  # cost of a call (request, answer) until measured, in seconds

    def __post_init__(self) -> None:
        if self.align < 1 or self.edge_context < 0 or self.object_context < 0:
            raise ConfigError(
                f"partition: align {self.align} must be >= 1, contexts {self.edge_context}, {self.object_context} >= 0"
            )
        if not 0 <= self.min_gain < 1:
            raise ConfigError(f"partition: min_gain {self.min_gain} must be in [0, 1)")


@dataclass(frozen=True)
class PartitionRequest:
    """What one frame's partition depends on (all in work-frame pixels).

    speeds: each server's throughput in megapixels (of padded model input) per second.
    objects: known objects, e.g. the previous frame's detections and this frame's sensitive boxes.
    call_seconds: each server's measured cost of one call (same order as ``speeds``); empty: the
        options' prior for every server.
    noise_s: how far a predicted frame time may be off (seconds): a split must gain more than this.
    """

    width: int
    height: int
    roi: tuple[Box, ...]
    objects: tuple[Box, ...]
    speeds: tuple[float, ...]
    call_seconds: tuple[float, ...] = ()
    noise_s: float = 0.0


def covered_area(roi: Sequence[Box], width: int, height: int, align: int = PAD_MULTIPLE) -> Box | None:
    """The box every chunk lies in: the RoI's bounding box, its start moved back to the alignment
    grid, clipped to the frame; None when the RoI holds no pixel of the frame."""
    clipped = [b.clipped(width, height) for b in roi]
    clipped = [b for b in clipped if b.width > 0 and b.height > 0]
    if not clipped:
        return None
    x1 = align * math.floor(min(b.x1 for b in clipped) / align)
    y1 = align * math.floor(min(b.y1 for b in clipped) / align)
    x2 = min(width, math.ceil(max(b.x2 for b in clipped)))
    y2 = min(height, math.ceil(max(b.y2 for b in clipped)))
    return Box(x1, y1, x2, y2)


def content_aware(request: PartitionRequest, options: PartitionOptions = PartitionOptions()) -> list[ChunkGeometry]:
    """At most one chunk per server (the fastest first), cut where no known object is.

    Returns the chunks in strip order; empty when the RoI holds no pixel of the frame.
    """
    area = covered_area(request.roi, request.width, request.height, options.align)
    if area is None or not request.speeds:
        return []
    calls = request.call_seconds or (options.chunk_cost_s,) * len(request.speeds)
    servers = sorted(zip(request.speeds, calls, strict=True), key=lambda server: -server[0])
    speeds, costs = [s for s, _ in servers], [c for _, c in servers]
    best: list[ChunkGeometry] = []
    best_cost = math.inf
    for count in range(1, len(speeds) + 1):
        chunks = strips(area, request.objects, speeds[:count], options)
        cost = predicted_seconds(chunks, speeds[:count], options, costs[:count])
        if cost < best_cost * (1 - options.min_gain) - request.noise_s:
            best, best_cost = chunks, cost
    return best


def predicted_seconds(
    chunks: Sequence[ChunkGeometry],
    speeds: Sequence[float],
    options: PartitionOptions,
    call_seconds: Sequence[float] | None = None,
) -> float:
    """The frame's predicted time: the slowest chunk, each on its server (the largest on the fastest)
    at that server's speed plus its cost per call (``call_seconds``, default the options' prior)."""
    areas = sorted((padded_side(c.box.width) * padded_side(c.box.height) for c in chunks), reverse=True)
    costs = call_seconds if call_seconds is not None else [options.chunk_cost_s] * len(speeds)
    return max((a / 1e6 / s + c for a, s, c in zip(areas, speeds, costs, strict=False)), default=0.0)


def strips(
    area: Box, objects: Sequence[Box], speeds: Sequence[float], options: PartitionOptions = PartitionOptions()
) -> list[ChunkGeometry]:
    """``len(speeds)`` strips across the long side of ``area``, widths by speed, cuts moved off objects."""
    across_x = area.width >= area.height  # cut lines are vertical when the area is wide
    lo, hi = (area.x1, area.x2) if across_x else (area.y1, area.y2)
    spans = [(b.x1, b.x2) if across_x else (b.y1, b.y2) for b in objects if b.width > 0 and b.height > 0]
    cuts = place_cuts(lo, hi, spans, speeds, options.align)
    bounds = [lo, *cuts, hi]
    holder = [bisect.bisect_right(cuts, (a + b) / 2) for a, b in spans]  # the strip holding each centre
    chunks = []
    for index, (start, end) in enumerate(zip(bounds, bounds[1:], strict=False)):
        held = [span for span, strip in zip(spans, holder, strict=True) if strip == index]
        first = start - (options.edge_context if index > 0 else 0)
        last = end + (options.edge_context if index < len(cuts) else 0)
        for a, b in held:
            first, last = min(first, a - options.object_context), max(last, b + options.object_context)
        # Only a chunk's start must be on the grid (the server pads its far edges to it anyway).
        first = max(lo, options.align * math.floor(first / options.align))
        last = min(hi, last)
        chunks.append(ChunkGeometry(_box(area, first, last, across_x), _box(area, start, end, across_x)))
    return chunks


def place_cuts(
    lo: float, hi: float, spans: Sequence[tuple[float, float]], speeds: Sequence[float], align: int
) -> list[float]:
    """Cut positions between ``lo`` and ``hi`` for strips sized by ``speeds``: each on the alignment
    grid, at least one grid step apart, at the position nearest its target that crosses the fewest
    object spans (none where possible).

    Moving a cut further off its target to keep objects away from it was tried and lost detections
    on street video (mAP 0.93 -> 0.88 on vtest.avi): the wider chunk it makes gains nothing the
    context margins do not already give."""
    total = sum(speeds)
    targets = [lo + (hi - lo) * sum(speeds[:k]) / total for k in range(1, len(speeds))]
    first_grid = align * math.ceil((lo + align) / align)
    grid = [float(p) for p in range(int(first_grid), int(hi), align) if p < hi]
    cuts: list[float] = []
    for k, target in enumerate(targets):
        remaining = len(targets) - k - 1
        floor = cuts[-1] + align if cuts else lo + align
        allowed = [p for p in grid if p >= floor and p <= hi - align * (remaining + 1)]
        if not allowed:
            break
        cuts.append(min(allowed, key=lambda p: (_crossed(p, spans), abs(p - target))))
    return cuts


def _crossed(position: float, spans: Sequence[tuple[float, float]]) -> int:
    return sum(a < position < b for a, b in spans)


def _box(area: Box, start: float, end: float, across_x: bool) -> Box:
    return Box(start, area.y1, end, area.y2) if across_x else Box(area.x1, start, area.x2, end)


def grid(width: int, height: int, tile: int, overlap: float) -> list[ChunkGeometry]:
    """The fixed tile grid (``--partition grid``), each tile's core the part of it nearer its own
    start than any neighbour's: the cores tile the frame, as the content-aware ones do."""
    boxes = tile_grid(width, height, tile, overlap)
    xs = _core_bounds(tile_starts(width, tile, overlap), min(tile, width), width)
    ys = _core_bounds(tile_starts(height, tile, overlap), min(tile, height), height)
    cores = {(int(sx), int(sy)): Box(x1, y1, x2, y2) for sy, (y1, y2) in ys.items() for sx, (x1, x2) in xs.items()}
    return [ChunkGeometry(b, cores[(int(b.x1), int(b.y1))]) for b in boxes]


def _core_bounds(starts: list[int], size: int, length: int) -> dict[int, tuple[int, int]]:
    """Per tile start, its core: from the middle of the overlap with the previous tile to the middle
    of the overlap with the next one (the frame's edges at the ends)."""
    bounds = {}
    for i, start in enumerate(starts):
        first = 0 if i == 0 else (start + starts[i - 1] + size) // 2
        last = length if i == len(starts) - 1 else (starts[i + 1] + start + size) // 2
        bounds[start] = (first, last)
    return bounds


class ContentAwarePartition:
    """The default: ``content_aware`` with fixed options."""

    def __init__(self, options: PartitionOptions = PartitionOptions()) -> None:
        self.options = options

    def __call__(self, request: PartitionRequest) -> list[ChunkGeometry]:
        return content_aware(request, self.options)


class GridPartition:
    """The fixed tile grid over the whole frame, whatever is known and however many servers: kept
    for comparison. Tiles outside the RoI are discarded by the policy."""

    def __init__(self, tile: int = 256, overlap: float = 0.2) -> None:
        self.tile, self.overlap = tile, overlap

    def __call__(self, request: PartitionRequest) -> list[ChunkGeometry]:
        return grid(request.width, request.height, self.tile, self.overlap)


PARTITIONS: dict[str, Callable[..., Callable[[PartitionRequest], list[ChunkGeometry]]]] = {
    "content": ContentAwarePartition,
    "grid": GridPartition,
}


# ---------------------------------------------------------------- discovery frames


def _discover_whole(request: PartitionRequest, faces: Sequence[Box]) -> PartitionRequest:
    """Nothing known: the whole RoI to the fastest server, exactly as the model sees the frame (its
    measured cost per call with it, when the request has them)."""
    if not request.speeds:
        return request
    fastest = max(range(len(request.speeds)), key=lambda i: request.speeds[i])
    calls = request.call_seconds[fastest : fastest + 1] if request.call_seconds else ()
    return replace(request, speeds=(request.speeds[fastest],), call_seconds=calls)


def _discover_blind(request: PartitionRequest, faces: Sequence[Box]) -> PartitionRequest:
    """Nothing known: split over every server anyway, avoiding the faces and the bodies they imply;
    what a cut does cross comes back in fragments that the merge fuses."""
    priors = person_priors(faces, request.width, request.height)
    return replace(request, objects=(*request.objects, *priors))


DISCOVERY: dict[str, Callable[[PartitionRequest, Sequence[Box]], PartitionRequest]] = {
    "whole": _discover_whole,
    "blind": _discover_blind,
}
