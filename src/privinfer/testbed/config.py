"""What a testbed is made of: servers, each with its own link's bandwidth and loss and its own CPU
share. Plain checked values, from a TOML file and / or command-line lists.

```toml
subnet = "10.77.0.0/24"   # private, and on no interface of this machine yet
port = 8001
runtime = "onnxruntime"

[[servers]]
bandwidth = "100mbit"     # tc rate units: bit, kbit, mbit, gbit (bits per second); omit for no shaping
threads = 1               # the server's intra-op threads

[[servers]]
bandwidth = "20mbit"
loss = 1.5                # percent of packets dropped, each direction
cpus = "1"                # taskset CPU list the server is pinned to
cpu = 0.25                # CPU budget in cores, enforced by a cgroup CPU quota (an edge server's share)
# slowdown = 10           # test knob: every model call 10x slower (`privinfer serve --slowdown`)
```
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

from privinfer.errors import ConfigError

_RATE = re.compile(r"^(?P<value>\d+(?:\.\d+)?)(?P<unit>bit|kbit|mbit|gbit)$")
_UNITS = {"bit": 1.0, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9}
_CPUS = re.compile(r"^\d+(?:-\d+)?(?:,\d+(?:-\d+)?)*$")
RUNTIMES = ("onnxruntime", "torch")
DEFAULT_SERVERS = 3
# Each server's link is a /30 of the subnet (host side .1, server .2 of the block).
LINK_PREFIX = 30
ADDRESSES_PER_LINK = 2 ** (32 - LINK_PREFIX)


def rate_bits(rate: str) -> float:
    """Bits per second of a tc rate such as ``"100mbit"`` (decimal units, as tc reads them).

    Raises ConfigError naming the rate and the accepted form.
    """
    match = _RATE.match(rate.strip().lower())
    if match is None or float(match["value"]) <= 0:
        raise ConfigError(f"bandwidth '{rate}' is not a positive rate like 100mbit, 512kbit or 1gbit")
    return float(match["value"]) * _UNITS[match["unit"]]


@dataclass(frozen=True)
class ServerSpec:
    """One server and its link. ``bandwidth`` None: the link is not shaped (veth speed)."""

    bandwidth: str | None = None
    loss: float = 0.0  # percent of packets dropped on the link, in each direction
    threads: int | None = None  # the server's intra-op threads (None: the runtime's default)
    cpus: str | None = None  # taskset CPU list, e.g. "0" or "0-1" (None: not pinned)
    slowdown: float = 1.0  # test knob: the server's model calls take this many times as long
    cpu: float | None = None  # CPU budget in cores (cgroup CFS quota; None: no budget)

    @property
    def bandwidth_bits(self) -> float | None:
        return None if self.bandwidth is None else rate_bits(self.bandwidth)

    def validate(self, which: str) -> ServerSpec:
        if self.bandwidth is not None:
            rate_bits(self.bandwidth)
        if not 0 <= self.loss < 100:
            raise ConfigError(f"{which}: loss {self.loss}% must be at least 0 and below 100")
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise ConfigError(f"{which}: threads {self.threads} must be at least 1")
        if self.cpus is not None and not _CPUS.match(self.cpus):
            raise ConfigError(f"{which}: cpus '{self.cpus}' is not a taskset CPU list like 0, 0-1 or 0,2")
        if not 1 <= self.slowdown < math.inf:
            raise ConfigError(f"{which}: slowdown {self.slowdown} must be at least 1 (times slower)")
        cores = os.cpu_count() or 1
        if self.cpu is not None and not (isinstance(self.cpu, int | float) and 0.01 <= self.cpu <= cores):
            raise ConfigError(f"{which}: cpu {self.cpu} must be a budget in cores between 0.01 and {cores}")
        return self


@dataclass(frozen=True)
class TestbedConfig:
    """Servers on this machine, each in its own network namespace behind its own link."""

    __test__ = False  # not a pytest test class, despite the name

    servers: tuple[ServerSpec, ...] = (ServerSpec(),) * DEFAULT_SERVERS
    subnet: str = "10.77.0.0/24"
    port: int = 8001
    runtime: str = "onnxruntime"
    token_file: Path | None = None  # servers then require this bearer token
    ready_timeout_s: float = 120.0  # per server, from start to answering ServerReady

    def validate(self) -> TestbedConfig:
        """Raises ConfigError naming the bad value."""
        network = self.network
        if not network.is_private or network.prefixlen > LINK_PREFIX:
            raise ConfigError(f"testbed subnet {self.subnet} must be a private IPv4 network of at least 4 addresses")
        if not self.servers:
            raise ConfigError("a testbed needs at least one server")
        if len(self.servers) > network.num_addresses // ADDRESSES_PER_LINK:
            raise ConfigError(
                f"{len(self.servers)} servers need {len(self.servers) * ADDRESSES_PER_LINK} addresses; "
                f"subnet {self.subnet} has {network.num_addresses}"
            )
        if not 0 < self.port < 65536:
            raise ConfigError(f"port {self.port} is not between 1 and 65535")
        if self.runtime not in RUNTIMES:
            raise ConfigError(f"unknown server runtime '{self.runtime}'; choose from: {', '.join(RUNTIMES)}")
        if self.ready_timeout_s <= 0:
            raise ConfigError(f"ready timeout {self.ready_timeout_s} s must be positive")
        for index, spec in enumerate(self.servers):
            spec.validate(f"server {index}")
        return self

    @property
    def network(self) -> ipaddress.IPv4Network:
        try:
            network = ipaddress.ip_network(self.subnet, strict=True)
        except ValueError as error:
            raise ConfigError(f"testbed subnet '{self.subnet}' is not a network like 10.77.0.0/24: {error}") from None
        if not isinstance(network, ipaddress.IPv4Network):
            raise ConfigError(f"testbed subnet {self.subnet} must be IPv4")
        return network


def load_config(
    path: Path | None = None,
    count: int | None = None,
    bandwidth: Sequence[str] | None = None,
    loss: Sequence[float] | None = None,
    threads: Sequence[int] | None = None,
    cpus: Sequence[str] | None = None,
    cpu: Sequence[float] | None = None,
    **top,
) -> TestbedConfig:
    """A checked config: the TOML file at ``path`` (optional), then the per-server lists given.

    A list of one value applies to every server; a longer one gives each server its value (its
    length is the server count unless ``count`` says otherwise). ``top`` are non-None top-level
    overrides (``port``, ``runtime``, ``subnet``, ``token_file``, ``ready_timeout_s``).

    Raises ConfigError: unreadable file, unknown keys, lists of the wrong length, bad values.
    """
    values = _read_toml(path) if path is not None else {}
    listed = {"bandwidth": bandwidth, "loss": loss, "threads": threads, "cpus": cpus, "cpu": cpu}
    given = {name: list(v) for name, v in listed.items() if v is not None}
    specs = list(values.pop("servers", ()))
    count = count or max([len(specs)] + [len(v) for v in given.values() if len(v) > 1]) or DEFAULT_SERVERS
    if count < 1:
        raise ConfigError(f"a testbed needs at least one server, got {count}")
    if specs and len(specs) != count:
        raise ConfigError(f"{path} describes {len(specs)} servers, but {count} were asked for")
    specs = specs or [ServerSpec()] * count
    for name, per_server in given.items():
        if len(per_server) not in (1, count):
            raise ConfigError(f"give one {name} for all servers or one for each of the {count}, got {per_server}")
        spread = per_server * count if len(per_server) == 1 else per_server
        specs = [replace(spec, **{name: value}) for spec, value in zip(specs, spread, strict=True)]
    values.update({k: v for k, v in top.items() if v is not None})
    _reject_unknown(values, TestbedConfig, "testbed config")
    if "token_file" in values:
        values["token_file"] = Path(values["token_file"])
    return TestbedConfig(servers=tuple(specs), **values).validate()


def _read_toml(path: Path) -> dict:
    try:
        values = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"cannot read testbed config {path}: {error}") from None
    servers = values.get("servers", [])
    if not isinstance(servers, list) or not all(isinstance(s, dict) for s in servers):
        raise ConfigError(f"{path}: 'servers' must be an array of tables ([[servers]])")
    for index, server in enumerate(servers):
        _reject_unknown(server, ServerSpec, f"{path}: server {index}")
    values["servers"] = [ServerSpec(**server) for server in servers]
    return values


def _reject_unknown(values: dict, cls, where: str) -> None:
    known = {f.name for f in fields(cls)} - {"servers"}  # the servers' tables are read on their own
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; known: {sorted(known)}")
