"""A discrete-event model of one frame over N servers, for what this machine cannot hold.

Fed by the cost model the pipeline measures (``schedule.CapacityModel``: each server's seconds per
call and per megapixel of padded model input) and by the bytes the pipeline sends and gets back,
it replays the frame as the client runs it:

1. the client's own stages (shrink, sensitive detection, obfuscation, merge: ``client_s``);
2. the partition, the real one (``partition.content_aware``), fed the servers' speeds, per-call
   costs and link rates as the pipeline's cost model would have learned them: it may keep fewer
   chunks than servers;
3. each chunk's request (3 bytes a pixel, unpadded) leaves over the client's uplink: chunks queue
   there one after another, largest first, at the uplink's rate (``None``: not limiting), and each
   also crosses its server's own link at that link's rate;
4. its server starts on arrival (one chunk per server, so no queue there) and takes its call cost
   plus its padded pixels at its speed;
5. its answer (``answer_bytes``, a few kB of detections) comes back over the server's link.

The servers stage ends with the last answer; the frame adds the client's stages. Everything is
deterministic: no queueing noise, no contention for the client's CPU while it sends.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass

from privinfer.client.partition import PartitionOptions, PartitionRequest, content_aware
from privinfer.models.nanodet import padded_side
from privinfer.types import Box

BYTES_PER_PIXEL = 3  # a chunk leaves as its RGB uint8 pixels
DEFAULT_OPTIONS = PartitionOptions()


@dataclass(frozen=True)
class ServerModel:
    """One server: its fixed cost per call, its seconds per megapixel, its link (bits/s, None: not limiting)."""

    call_s: float
    s_per_mpx: float
    link_bits: float | None = None


@dataclass(frozen=True)
class FrameModel:
    """One frame as the servers see it: the work frame's size, the client's own seconds, the answer size."""

    width: int
    height: int
    client_s: float = 0.0
    answer_bytes: float = 7200.0


@dataclass(frozen=True)
class SimulatedFrame:
    """The model's answer: seconds of the servers stage and of the frame, and the chunks' pixels sent."""

    servers_s: float
    total_s: float
    chunks: int
    request_bytes: float


def simulate_frame(
    frame: FrameModel,
    servers: Sequence[ServerModel],
    uplink_bits: float | None = None,
    options: PartitionOptions = DEFAULT_OPTIONS,
) -> SimulatedFrame:
    """One frame over ``servers`` (the partition chooses how many get a chunk) with the client's uplink
    at ``uplink_bits`` (None: not limiting). Raises ValueError without servers."""
    if not servers:
        raise ValueError("simulating a frame needs at least one server")
    ordered = sorted(servers, key=lambda s: _effective_s_per_mpx(s, uplink_bits))
    request = PartitionRequest(
        frame.width,
        frame.height,
        (Box(0, 0, frame.width, frame.height),),
        (),
        speeds=tuple(1.0 / _effective_s_per_mpx(s, uplink_bits) for s in ordered),
        call_seconds=tuple(s.call_s for s in ordered),
    )
    chunks = content_aware(request, options)
    boxes = sorted((c.box for c in chunks), key=lambda b: -b.width * b.height)
    # Largest chunk to the fastest server, as the schedule does; both lists are best first.
    events: list[tuple[float, int, str]] = []
    uplink_free = 0.0
    sent = 0.0
    for index, (box, server) in enumerate(zip(boxes, ordered, strict=False)):
        request_bytes = box.width * box.height * BYTES_PER_PIXEL
        sent += request_bytes
        leaves = uplink_free + _seconds(request_bytes, uplink_bits)
        uplink_free = leaves
        arrives = max(leaves, _seconds(request_bytes, server.link_bits))
        heapq.heappush(events, (arrives, index, "arrive"))
    finished = 0.0
    while events:
        time, index, kind = heapq.heappop(events)
        box, server = boxes[index], ordered[index]
        if kind == "arrive":
            pixels = padded_side(box.width) * padded_side(box.height)
            heapq.heappush(events, (time + server.call_s + pixels / 1e6 * server.s_per_mpx, index, "computed"))
        elif kind == "computed":
            heapq.heappush(events, (time + _seconds(frame.answer_bytes, server.link_bits), index, "answered"))
        else:
            finished = max(finished, time)
    return SimulatedFrame(finished, frame.client_s + finished, len(boxes), sent)


def _seconds(size_bytes: float, bits: float | None) -> float:
    return 0.0 if bits is None else size_bytes * 8 / bits


def _effective_s_per_mpx(server: ServerModel, uplink_bits: float | None) -> float:
    """Seconds per megapixel as the pipeline's cost model learns it: compute plus the transfer of a
    megapixel's bytes over the slower of the server's link and the client's uplink."""
    links = [b for b in (server.link_bits, uplink_bits) if b is not None]
    transfer = 1e6 * BYTES_PER_PIXEL * 8 / min(links) if links else 0.0
    return server.s_per_mpx + transfer
