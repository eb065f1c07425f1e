"""What people type on the command line, checked before torch loads (a typo is refused in well
under a second, not after the 2-3 s that importing torch and the models takes).

The names, defaults and ranges here mirror the registries and `PipelineConfig`, which import
torch; ``tests/test_options.py`` holds them equal, so this module cannot drift from them.
`PipelineConfig.validate` still checks everything for callers that do not come through the CLI.
"""

from __future__ import annotations

import argparse
import math
import re
import socket
from collections.abc import Callable, Sequence

from privinfer.errors import ConfigError

# The registries' names (privinfer.client.detect, privinfer.obfuscate, roi.ROI_PROVIDERS, serve.BACKENDS,
# client.head.HEAD_RUNTIMES, partition.PARTITIONS / DISCOVERY), sorted.
SENSITIVE_DETECTORS = (
    "faces",
    "faces-cascade",
    "faces-fast",
    "heads",
    "persons",
    "plates",
    "screens",
    "text",
)
OBFUSCATORS = (
    "blur",
    "channel-mask",
    "fill",
    "gaussian",
    "mosaic",
    "patch-mask",
    "pca",
    "random-mask",
    "repair",
    "token",
    "unaltered",
)
ROI_MODES = ("boxes", "fovea", "frame", "tracked")
PARTITIONS = ("content", "grid")  # partition.PARTITIONS
DISCOVERY = ("blind", "whole")  # partition.DISCOVERY
BACKENDS = ("processes", "threads")
CLIENT_RUNTIMES = ("onnxruntime", "torch")
FILLS = ("black", "ns", "telea")  # client.fill.available_fills()
ANONYMIZE = ("blur", "fill", "mosaic")  # anonymize.ANONYMIZERS
TRITON_BACKENDS = ("onnxruntime", "python")  # serve.export.TRITON_BACKENDS
# Each detector's own score threshold (SensitiveDetector.default_threshold), used unless --thresh.
DETECTOR_THRESHOLDS = {
    "faces": 0.2,
    "faces-cascade": 0.2,
    "faces-fast": 0.5,
    "heads": 0.3,
    "persons": 0.3,
    "plates": 0.5,
    "screens": 0.3,
    "text": 0.5,
}

# PipelineConfig's defaults for the options `run` exposes (None: native resolution / not set).
RUN_DEFAULTS = {
    "servers": 3,
    "backend": "threads",
    "deadline": 30.0,
    "obfuscator": "repair",
    "fill": None,
    "sensitive": ("faces",),
    "mask_scale": 1.3,
    "detect_size": None,
    "min_face": 8.0,
    "roi_mode": "frame",
    "partition": "content",
    "discovery": "blind",
    "edge_context": 64,
    "object_context": 32,
    "tile": 256,
    "overlap": 0.2,
    "work_size": 416,
    "hold_frames": 5,
    "client_runtime": "onnxruntime",
    "device": "cpu",
}

# Ranges (tiling.MIN_TILE, tiling.MAX_OVERLAP, protocol.RequestLimits().max_side, pipeline.MIN_DETECT_SIZE).
MIN_TILE = 32
MAX_TILE = 2048
MAX_OVERLAP = 0.9
MIN_DETECT_SIZE = 64

_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?)$")
_ADDRESS = re.compile(r"^(?:\[(?P<ip6>[0-9a-fA-F:.]+)\]|(?P<host>[A-Za-z0-9.\-_]+)):(?P<port>\d{1,5})$")


# ---------------------------------------------------------------- argparse types
# Each raises argparse.ArgumentTypeError with a whole message that starts with its flag
# ("--tile 16: tile size must be ..."), so the CLI prints it as the one line it is.


def one_of(choices: Sequence[str], flag: str) -> Callable[[str], str]:
    """One name out of ``choices``."""

    def parse(text: str) -> str:
        if text not in choices:
            raise argparse.ArgumentTypeError(f"{flag} '{text}' is unknown; choose from: {', '.join(choices)}")
        return text

    return parse


def names(choices: Sequence[str], what: str, flag: str) -> Callable[[str], tuple[str, ...]]:
    """A comma-separated list whose every item is one of ``choices`` ('' is the empty list)."""

    def parse(text: str) -> tuple[str, ...]:
        chosen = tuple(part.strip() for part in text.split(",") if part.strip())
        for name in chosen:
            if name not in choices:
                raise argparse.ArgumentTypeError(f"{flag}: unknown {what} '{name}'; choose from: {', '.join(choices)}")
        return chosen

    return parse


def bounded(kind: type, low: float, high: float = math.inf, *, flag: str, what: str = "", above: bool = False):
    """A number of ``kind`` in [low, high] ((low, high] when ``above``). NaN is refused, and so is
    inf even without an upper bound: no option means 'infinitely'."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} {text}: not a {'whole ' if kind is int else ''}number") from None
        low_ok = value > low if above else value >= low
        if not (low_ok and value <= high and math.isfinite(value)):
            if high < math.inf:
                span = f"between {low:g} and {high:g}"
            else:
                span = f"above {low:g}" if above else f"at least {low:g}"
            raise argparse.ArgumentTypeError(f"{flag} {text}: {what + ' ' if what else ''}must be {span}")
        return value

    return parse


def size_or_native(minimum: int, flag: str) -> Callable[[str], int]:
    """A side in pixels of at least ``minimum``, or 0 for native resolution."""
    at_least = bounded(int, minimum, flag=flag)

    def parse(text: str) -> int:
        if text.strip() == "0":
            return 0
        try:
            return at_least(text)
        except argparse.ArgumentTypeError as error:
            raise argparse.ArgumentTypeError(f"{error} pixels (or 0: native resolution)") from None

    return parse


def device(text: str) -> str:
    """'cpu', 'cuda' or 'cuda:N' (whether a GPU is there is `check_device`'s job, after torch loads)."""
    if not _DEVICE.match(text.strip()):
        raise argparse.ArgumentTypeError(f"--device '{text}' is not a device; use cpu, cuda or cuda:N")
    return text.strip()


def servers(text: str) -> int | tuple[str, ...]:
    """A count of local servers ('3', at least 1) or remote addresses ('host:port,host:port')."""
    if text.strip().lstrip("+-").isdigit():
        if int(text) < 1:
            raise argparse.ArgumentTypeError(f"--servers {text}: need at least one server")
        return int(text)
    addresses = tuple(part.strip() for part in text.split(",") if part.strip())
    if not addresses:
        raise argparse.ArgumentTypeError("--servers: give a number of local servers or host:port addresses")
    for address in addresses:
        match = _ADDRESS.match(address)
        if match is None or not 0 < int(match["port"]) < 65536:
            raise argparse.ArgumentTypeError(
                f"--servers: server address '{address}' is not host:port (e.g. 127.0.0.1:8001 or edge-1:8001)"
            )
    return addresses


# ---------------------------------------------------------------- checks that need the machine


def check_device(name: str) -> str:
    """``name`` if torch can use it here. Imports torch (call it once the options are known good).

    Raises:
        ConfigError: a CUDA device is asked for on a machine where torch sees no GPU, or the
            index is past the GPUs there.
    """
    if not name.startswith("cuda"):
        return name
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: torch finds no usable CUDA GPU on this machine; use --device cpu")
    index = int(name.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        raise ConfigError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA GPU(s), numbered from 0")
    return name


def check_anonymize(anonymize: str | None, out: object | None) -> None:
    """Raises ConfigError unless ``anonymize`` is None or a known way with a folder to write to."""
    if anonymize is None:
        return
    if anonymize not in ANONYMIZE:
        raise ConfigError(f"--anonymize '{anonymize}' is unknown; choose from: {', '.join(ANONYMIZE)}")
    if out is None:
        raise ConfigError(f"--anonymize {anonymize}: say where to write the frames with --out DIR")


def refused_servers(addresses: Sequence[str], timeout_s: float = 1.0) -> list[str]:
    """One line per address that refuses a TCP connection now or whose host does not resolve.

    Both are final answers, given at once, so they are reported at once. An address that does
    not answer within ``timeout_s`` (a slow or lossy link, a firewall that drops) is not listed:
    the server pool's readiness check gives it its full time.
    """
    problems = []
    for address in addresses:
        match = _ADDRESS.match(address)
        if match is None:
            continue  # PipelineConfig.validate names it
        host, port = match["ip6"] or match["host"], int(match["port"])
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                pass
        except ConnectionRefusedError:
            problems.append(f"{address}: connection refused (is `privinfer serve` running there, on that port?)")
        except socket.gaierror:
            problems.append(f"{address}: the host name does not resolve")
        except OSError:
            pass  # timed out or unreachable for now: the pool's own check decides
    return problems
