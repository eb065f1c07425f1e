"""Proof on real traffic that no raw pixel of a sensitive region leaves the client.

client (Pipeline, gRPC) -> recording TCP proxy on loopback -> `privinfer serve`

Real photos get random-noise patches pasted in ("faces"); a planted detector reports exactly
those patches as sensitive. The pipeline runs with ``work_size=None`` and the fixed tile grid (so
that one server gets both raw and privatized chunks), so every raw tile travels as a byte-exact
crop of the frame (uint8 HxWx3, row-major, unpadded, in the request's ``raw_input_contents``).
The proxy keeps every byte the client sends.
Then, in that byte stream (as captured, and with the HTTP/2 framing taken off so that a tile's
bytes are contiguous again):

- every 8-pixel row (24 bytes) of every 8x8 block inside a sensitive patch is searched for: none
  may appear. Noise makes each row unique (192 random bits), so a hit could only be a leak;
- 8x8 blocks from tiles that went out raw are searched for, as whole blocks (8 rows at the
  tile's row stride): they must all appear in the de-framed stream. This positive control shows
  the search finds pixels when they are there.

A last run with the detector blinded is the negative control: the patches then go out raw, and
the same search must find every one of their rows.

    .venv/bin/python scripts/capture_proof.py [--frames 4] [--obfuscators channel-mask,blur]
        [--block 8] [--tile 128] [--in-process] [--capture proxy|tcpdump]

By default the server is a `privinfer serve --runtime torch` subprocess; ``--in-process`` starts it
in this process instead (tests/test_capture_proof.py does). ``--capture tcpdump`` drops the proxy:
the client dials the server directly and tcpdump records the loopback interface (root, and
``apt-get install tcpdump``); the TCP stream is reassembled from the pcap. Exit status 1 on a leak
or a failed control. The connection is plain TCP on purpose: with TLS nothing would be readable.
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from skimage.data import astronaut

from privinfer import assets
from privinfer.client.detect.base import DetectorOptions, SensitiveDetector
from privinfer.client.tiling import grow, touches
from privinfer.images import read_image
from privinfer.pipeline import Pipeline, PipelineConfig
from privinfer.types import Box, Detection, Treatment

HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_DATA, _PADDED = 0x0, 0x8


# ---------------------------------------------------------------- the recording proxy


class RecordingProxy:
    """A TCP forwarder on 127.0.0.1 that keeps every byte clients send, one record per connection.

    ``address`` is what clients dial; ``upstream`` is the real server's ``host:port``.
    """

    def __init__(self, upstream: str) -> None:
        host, port = upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.sent: list[bytearray] = []  # client -> server
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    def connections(self) -> list[bytes]:
        """Each connection's client-to-server bytes so far."""
        with self._lock:
            return [bytes(record) for record in self.sent]

    def close(self) -> None:
        self.listener.close()
        for sock in self._sockets:
            with _ignored(OSError):
                sock.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # the listener was closed
                return
            server = socket.create_connection(self.upstream)
            record = bytearray()
            with self._lock:
                self.sent.append(record)
                self._sockets += [client, server]
            for source, sink, keep in ((client, server, record), (server, client, None)):
                thread = threading.Thread(target=self._pump, args=(source, sink, keep), daemon=True)
                thread.start()
                self._threads.append(thread)

    def _pump(self, source: socket.socket, sink: socket.socket, record: bytearray | None) -> None:
        while True:
            try:
                chunk = source.recv(1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                with _ignored(OSError):
                    sink.shutdown(socket.SHUT_WR)
                return
            if record is not None:
                with self._lock:
                    record.extend(chunk)
            try:
                sink.sendall(chunk)
            except OSError:
                return


@contextmanager
def _ignored(*errors: type[BaseException]) -> Iterator[None]:
    try:
        yield
    except errors:
        pass


class LoopbackCapture:
    """tcpdump on the loopback interface (root, tcpdump installed): the TCP payloads of every
    connection to the server's port, reassembled by sequence number. Clients dial the server
    itself (``address``); nothing sits between them."""

    def __init__(self, server: str, folder: Path) -> None:
        if shutil.which("tcpdump") is None:
            raise RuntimeError("tcpdump is not installed (apt-get install tcpdump)")
        self.address = server
        self.port = int(server.rsplit(":", 1)[1])
        self.pcap = folder / "loopback.pcap"
        command = ["tcpdump", "-i", "lo", "-s", "0", "-B", "65536", "-U", "-n", "-w", str(self.pcap)]
        self.process = subprocess.Popen(
            [*command, f"tcp dst port {self.port}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        line = self.process.stderr.readline()  # "listening on lo, ..." once packets are being taken
        if "listening" not in line:
            raise RuntimeError(f"tcpdump did not start: {line.strip()} {self.process.stderr.read().strip()}")
        self.report = ""

    def close(self) -> None:
        if self.process.poll() is None:
            time.sleep(0.5)  # the last segments reach the capture buffer
            self.process.send_signal(signal.SIGINT)
            self.report = self.process.communicate(timeout=30)[1].strip().replace("\n", "; ")

    def connections(self) -> list[bytes]:
        """Each connection's client-to-server bytes. Raises RuntimeError on a gap (dropped packets)."""
        segments: dict[int, dict[int, bytes]] = defaultdict(dict)
        starts: dict[int, int] = {}
        for packet in _pcap_packets(self.pcap.read_bytes()):
            parsed = _tcp_to(packet, self.port)
            if parsed is None:
                continue
            client_port, seq, syn, payload = parsed
            if syn:
                starts[client_port] = (seq + 1) % 2**32
            elif payload:
                segments[client_port][seq] = payload
        out = []
        for client_port, parts in segments.items():
            at = starts.get(client_port, min(parts))
            data = bytearray()
            while parts:
                chunk = parts.pop(at, None)
                if chunk is None:
                    raise RuntimeError(f"connection from port {client_port}: bytes missing at {at} ({self.report})")
                data += chunk
                at = (at + len(chunk)) % 2**32
            out.append(bytes(data))
        return out


def _pcap_packets(pcap: bytes) -> Iterator[bytes]:
    """Link-layer frames of a classic pcap file (Ethernet link type, as tcpdump writes for ``lo``)."""
    magic = int.from_bytes(pcap[:4], "little")
    if magic not in (0xA1B2C3D4, 0xA1B23C4D) or int.from_bytes(pcap[20:24], "little") != 1:
        raise RuntimeError("expected a little-endian pcap file of Ethernet frames")
    at = 24
    while at + 16 <= len(pcap):
        included, original = (int.from_bytes(pcap[at + i : at + i + 4], "little") for i in (8, 12))
        if included != original:
            raise RuntimeError("tcpdump truncated a packet (snap length)")
        yield pcap[at + 16 : at + 16 + included]
        at += 16 + included


def _tcp_to(frame: bytes, port: int) -> tuple[int, int, bool, bytes] | None:
    """(client port, sequence number, SYN?, payload) of an IPv4 TCP segment sent to ``port``."""
    if frame[12:14] != b"\x08\x00":
        return None
    ip = frame[14:]
    header, total = (ip[0] & 0xF) * 4, int.from_bytes(ip[2:4], "big")
    if ip[9] != 6:
        return None
    tcp = ip[header:total]
    if int.from_bytes(tcp[2:4], "big") != port:
        return None
    offset = (tcp[12] >> 4) * 4
    return int.from_bytes(tcp[0:2], "big"), int.from_bytes(tcp[4:8], "big"), bool(tcp[13] & 0x02), tcp[offset:]


def http2_data(connection: bytes) -> bytes:
    """The DATA frames' payloads of one client-to-server HTTP/2 connection, concatenated per stream
    (padding removed): the gRPC messages as the application wrote them, tile bytes contiguous."""
    if not connection.startswith(HTTP2_PREFACE):
        raise ValueError("not an HTTP/2 client connection (no preface)")
    streams: dict[int, bytearray] = defaultdict(bytearray)
    at = len(HTTP2_PREFACE)
    while at + 9 <= len(connection):
        length = int.from_bytes(connection[at : at + 3], "big")
        kind, flags = connection[at + 3], connection[at + 4]
        stream = int.from_bytes(connection[at + 5 : at + 9], "big") & 0x7FFFFFFF
        payload = connection[at + 9 : at + 9 + length]
        at += 9 + length
        if kind == _DATA:
            if flags & _PADDED:
                payload = payload[1 : len(payload) - payload[0]]
            streams[stream].extend(payload)
    return b"".join(bytes(data) for _, data in sorted(streams.items()))


# ---------------------------------------------------------------- searching bytes


class ByteIndex:
    """Where given byte strings occur in a stream: every 8-byte window is a uint64 key."""

    def __init__(self, stream: bytes) -> None:
        self.stream = stream
        data = np.frombuffer(stream, np.uint8)
        windows = np.lib.stride_tricks.sliding_window_view(data, 8) if len(data) >= 8 else np.empty((0, 8), np.uint8)
        self.keys = np.ascontiguousarray(windows).view("<u8").ravel()

    def find(self, needles: np.ndarray) -> list[list[int]]:
        """Offsets of each needle (rows of an (M, L >= 8) uint8 array) in the stream."""
        needles = np.ascontiguousarray(needles, np.uint8)
        keys = np.ascontiguousarray(needles[:, :8]).view("<u8").ravel()
        by_key: dict[int, list[int]] = defaultdict(list)
        for index, key in enumerate(keys.tolist()):
            by_key[key].append(index)
        found: list[list[int]] = [[] for _ in range(len(needles))]
        for offset in np.flatnonzero(np.isin(self.keys, keys)).tolist():
            for index in by_key[int(self.keys[offset])]:
                needle = needles[index].tobytes()
                if self.stream[offset : offset + len(needle)] == needle:
                    found[index].append(offset)
        return found


def block_rows(rgb: np.ndarray, x: int, y: int, block: int) -> np.ndarray:
    """The block's rows as they lie in a row-major uint8 tile: (block, block * 3) bytes."""
    return np.ascontiguousarray(rgb[y : y + block, x : x + block]).reshape(block, block * 3)


def blocks_found(index: ByteIndex, blocks: Sequence[np.ndarray], strides: Sequence[int]) -> int:
    """How many blocks occur whole: row k at (offset of row 0) + k * its stride, for some offset
    (``strides[b]``: the row stride in bytes of the chunk block ``b`` was taken from)."""
    if not blocks:
        return 0
    rows = np.concatenate(blocks)
    offsets = index.find(rows)
    height, count = len(blocks[0]), 0
    for b, stride in enumerate(strides):
        starts = set(offsets[b * height])
        for k in range(1, height):
            starts &= {o - k * stride for o in offsets[b * height + k]}
        count += bool(starts)
    return count


# ---------------------------------------------------------------- planted frames


class PlantedBoxes(SensitiveDetector):
    """A sensitive detector that reports exactly the boxes it is told, for the frame at hand."""

    def __init__(self) -> None:
        super().__init__(DetectorOptions(threshold=0.0, mask_scale=1.0))
        self.boxes: list[Box] = []

    def detect_raw(self, rgb: np.ndarray) -> list[Detection]:
        return [Detection(box, "face", 1.0) for box in self.boxes]


@dataclass(frozen=True)
class PlantedFrame:
    name: str
    rgb: np.ndarray
    boxes: tuple[Box, ...]


def planted_frames(count: int, seed: int = 0) -> list[PlantedFrame]:
    """Real photos, each with two or three random-noise patches (40-100 px) at random places."""
    rng = np.random.default_rng(seed)
    photos = [("dog.jpg", read_image(assets.require("dog.jpg")).pixels), ("astronaut", astronaut())]
    photos += [(name, read_image(assets.require(name)).pixels) for name in ("person.jpg", "horses.jpg")]
    frames = []
    for i in range(count):
        name, photo = photos[i % len(photos)]
        rgb, boxes = photo.copy(), []
        height, width = rgb.shape[:2]
        for _ in range(int(rng.integers(2, 4))):
            w, h = (int(v) for v in rng.integers(40, 101, 2))
            x, y = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
            rgb[y : y + h, x : x + w] = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            boxes.append(Box(x, y, x + w, y + h))
        frames.append(PlantedFrame(f"{name}#{i}", rgb, tuple(boxes)))
    return frames


# ---------------------------------------------------------------- the proof


@dataclass
class Proof:
    """What one obfuscator's run put on the wire, and what the search found in it."""

    obfuscator: str
    bytes_captured: int = 0
    bytes_data: int = 0
    tiles: dict[str, int] = field(default_factory=dict)
    sensitive_rows: int = 0
    sensitive_rows_in_tcp: int = 0
    sensitive_rows_in_data: int = 0
    sensitive_blocks: int = 0
    control_blocks: int = 0
    control_in_data: int = 0
    control_in_tcp: int = 0

    @property
    def holds(self) -> bool:
        """No sensitive row anywhere, and every control block found (the search works)."""
        leaked = self.sensitive_rows_in_tcp or self.sensitive_rows_in_data
        return not leaked and self.sensitive_rows > 0 and 0 < self.control_blocks == self.control_in_data

    def lines(self, block: int) -> list[str]:
        tiles = ", ".join(f"{count} {kind}" for kind, count in sorted(self.tiles.items()))
        return [
            f"{self.obfuscator}: captured {self.bytes_captured:,} bytes client->server "
            f"({self.bytes_data:,} in HTTP/2 DATA payloads); tiles sent: {tiles}",
            f"  sensitive: {self.sensitive_blocks:,} {block}x{block} blocks, {self.sensitive_rows:,} distinct "
            f"{block}-pixel rows searched; found {self.sensitive_rows_in_tcp} in the TCP bytes, "
            f"{self.sensitive_rows_in_data} in the DATA payloads",
            f"  control: {self.control_in_data} of {self.control_blocks} {block}x{block} blocks from raw tiles "
            f"found whole in the DATA payloads, {self.control_in_tcp} in the TCP bytes as captured",
            f"  {'HOLDS' if self.holds else 'FAILS'}",
        ]


def run_proof(
    server: str,
    obfuscator: str,
    frames: Sequence[PlantedFrame],
    block: int = 8,
    tile: int = 128,
    seed: int = 0,
    blind: bool = False,
    capture: str = "proxy",
) -> Proof:
    """Run ``frames`` through a pipeline whose one server is reached through a recording proxy
    (``capture`` "proxy") or directly while tcpdump records the loopback ("tcpdump"), then search
    what the client sent. ``blind``: the detector reports nothing, so the patches go out raw; the
    search must then find them (the negative control)."""
    with tempfile.TemporaryDirectory(prefix="privinfer-capture-") as folder:
        recorder = RecordingProxy(server) if capture == "proxy" else LoopbackCapture(server, Path(folder))
        results, connections = _recorded_run(recorder, obfuscator, frames, tile, blind)
    proof = Proof(f"{obfuscator}, detector blinded" if blind else obfuscator)
    return _search(proof, connections, frames, results, block, tile, seed)


def _recorded_run(recorder, obfuscator: str, frames: Sequence[PlantedFrame], tile: int, blind: bool):
    detector = PlantedBoxes()
    config = PipelineConfig(
        servers=(recorder.address,), obfuscator=obfuscator, sensitive=(), hold_frames=0, work_size=None,
        partition="grid", tile=tile,
    )  # fmt: skip
    results = []
    try:
        with Pipeline(config, detectors=[detector]) as pipeline:
            for frame in frames:
                detector.boxes = [] if blind else list(frame.boxes)
                pipeline.reset()
                results.append(pipeline(frame.rgb))
        time.sleep(0.2)  # let the last bytes of the closed channel through
    finally:
        recorder.close()
    return results, recorder.connections()


def _search(proof: Proof, connections: list[bytes], frames, results, block: int, tile: int, seed: int) -> Proof:
    captured = b"".join(connections)
    data = b"".join(http2_data(connection) for connection in connections)
    proof.bytes_captured, proof.bytes_data = len(captured), len(data)
    for record in (record for result in results for record in result.tiles):
        kind = f"{record.treatment} as {record.payload}" if record.payload else str(record.treatment)
        proof.tiles[kind] = proof.tiles.get(kind, 0) + 1
    tcp, payloads = ByteIndex(captured), ByteIndex(data)

    rng = np.random.default_rng(seed)
    sensitive_rows, control = [], []
    for frame, result in zip(frames, results, strict=True):
        for box in frame.boxes:
            x1, y1, x2, y2 = (int(v) for v in box.as_list())
            proof.sensitive_blocks += (x2 - x1 - block + 1) * (y2 - y1 - block + 1)
            # Every row of every block inside the patch: each pixel row, at each x offset.
            for y in range(y1, y2):
                for x in range(x1, x2 - block + 1):
                    sensitive_rows.append(frame.rgb[y, x : x + block].reshape(-1))
        control += _control_blocks(frame, result, block, rng)
    rows = np.unique(np.stack(sensitive_rows), axis=0)
    proof.sensitive_rows = len(rows)
    proof.sensitive_rows_in_tcp = sum(bool(hits) for hits in tcp.find(rows))
    proof.sensitive_rows_in_data = sum(bool(hits) for hits in payloads.find(rows))
    blocks, strides = [rows for rows, _ in control], [stride for _, stride in control]
    proof.control_blocks = len(control)
    proof.control_in_data = blocks_found(payloads, blocks, strides)
    proof.control_in_tcp = blocks_found(tcp, blocks, strides)
    return proof


def _control_blocks(frame: PlantedFrame, result, block: int, rng: np.random.Generator, per_frame: int = 40):
    """Random blocks inside chunks that went out raw, away from every sensitive patch, and busy
    enough (many distinct byte values per row) that a hit cannot be a chance match; each with the
    row stride of its chunk (a raw chunk travels as its own uint8 H x W x 3 pixels, unpadded)."""
    raw = [t.box for t in result.tiles if t.treatment == Treatment.RAW]
    grown = [grow(box, 1.0) for box in frame.boxes]
    blocks = []
    for _ in range(per_frame * 50):
        if len(blocks) == per_frame or not raw:
            break
        tile = raw[int(rng.integers(len(raw)))]
        x = int(rng.integers(tile.x1, tile.x2 - block + 1))
        y = int(rng.integers(tile.y1, tile.y2 - block + 1))
        if any(touches(Box(x, y, x + block, y + block), box) for box in grown):
            continue
        rows = block_rows(frame.rgb, x, y, block)
        if all(len(np.unique(row)) >= block for row in rows):
            blocks.append((rows, int(tile.width) * 3))
    return blocks


# ---------------------------------------------------------------- servers


@contextmanager
def served(in_process: bool) -> Iterator[str]:
    """A `privinfer serve` on a free loopback port: its address."""
    if in_process:
        from privinfer.serve.grpc_server import ServeConfig, start_server

        running = start_server(ServeConfig(port=0, runtime="torch"))
        try:
            yield running.address
        finally:
            running.stop(0)
        return
    command = [sys.executable, "-m", "privinfer.cli", "serve", "--port", "0", "--runtime", "torch"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in server.stdout:
            match = re.search(r"serving .* on (\S+:\d+)", line)
            if match:
                yield match.group(1)
                break
        else:
            raise RuntimeError(f"privinfer serve ended without serving (exit {server.wait()})")
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=4, help="photos with planted sensitive patches")
    parser.add_argument("--obfuscators", default="channel-mask,blur", help="comma-separated obfuscators")
    parser.add_argument("--block", type=int, default=8, help="block side searched for, in pixels (4 or 8)")
    parser.add_argument("--tile", type=int, default=128, help="tile size of the fixed grid the proof runs with")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--in-process", action="store_true", help="serve from this process, not a subprocess")
    parser.add_argument(
        "--capture", choices=["proxy", "tcpdump"], default="proxy", help="record through a proxy, or tcpdump on lo"
    )
    args = parser.parse_args()
    if args.block < 3:
        parser.error("--block must be at least 3 pixels (rows of 9+ bytes are searched by 8-byte keys)")
    frames = planted_frames(args.frames, args.seed)
    holds = True
    with served(args.in_process) as address:
        where = "in-process" if args.in_process else "privinfer serve subprocess"
        print(f"server {address} ({where}); capture: {args.capture}")
        for obfuscator in args.obfuscators.split(","):
            started = time.perf_counter()
            proof = run_proof(address, obfuscator, frames, args.block, args.tile, args.seed, capture=args.capture)
            print("\n".join(proof.lines(args.block)) + f" ({time.perf_counter() - started:.1f} s)", flush=True)
            holds &= proof.holds
        # The negative control: had the detector missed the patches, the search would have shown it.
        blind = run_proof(address, "channel-mask", frames, args.block, args.tile, args.seed, True, args.capture)
        print("\n".join(blind.lines(args.block)[:-1]), flush=True)
        caught = blind.sensitive_rows_in_data == blind.sensitive_rows > 0
        print(f"  {'leak CAUGHT, as it must be' if caught else 'leak MISSED: the search is broken'}")
    holds &= caught
    print("no raw sensitive pixel block on the wire; the controls show the search works" if holds else "PROOF FAILED")
    return 0 if holds else 1


if __name__ == "__main__":
    sys.exit(main())
