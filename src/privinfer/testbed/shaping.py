"""A link's bandwidth (tc token bucket filter, both directions) and packet loss (nftables).

Bandwidth: a ``tbf`` qdisc on each end of the veth, so requests (client -> server, on the root
namespace's end) and answers (server -> client, on the server's end) each get the rate. Loss: an
nftables table inside the server's namespace dropping a random share of the packets that cross
its link, each way (``netem`` would do both, but this kernel does not have it).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass

from privinfer.testbed.config import rate_bits
from privinfer.testbed.network import SERVER_DEVICE, Link, run

# The bucket holds at least this much, or 10 ms at the rate: enough for whole (GSO-split) packets
# and a smooth rate, small next to a tile (hundreds of KiB).
MIN_BURST_BYTES = 16 * 1024
BURST_SECONDS = 0.01
# Longest a packet may wait in the bucket's queue before it is dropped (TCP then backs off).
QUEUE_LATENCY = "100ms"
LOSS_TABLE = "privinfer_testbed"
_LOSS_RESOLUTION = 10_000  # loss in basis points: 0.01 % steps


@dataclass(frozen=True)
class LinkShape:
    """What is applied on a link now: rates in bits/s each way (None: unshaped) and loss in %."""

    to_server_bits: float | None
    to_client_bits: float | None
    loss: float | None  # None: no loss rules on the link


def tbf_arguments(device: str, bandwidth: str) -> list[str]:
    """``tc`` arguments that shape ``device``'s egress to ``bandwidth`` (pure)."""
    bits = rate_bits(bandwidth)
    burst = max(MIN_BURST_BYTES, int(bits / 8 * BURST_SECONDS))
    return ["qdisc", "replace", "dev", device, "root", "tbf", "rate", f"{bits:.0f}bit", "burst", str(burst),
            "latency", QUEUE_LATENCY]  # fmt: skip


def loss_ruleset(percent: float) -> str:
    """An nftables script dropping ``percent`` % of the packets in and out of the server's device (pure)."""
    threshold = round(percent / 100 * _LOSS_RESOLUTION)
    drop = f"numgen random mod {_LOSS_RESOLUTION} < {threshold} drop"
    return (
        f"table inet {LOSS_TABLE} {{\n"
        f"  chain inbound {{ type filter hook input priority 0; policy accept; "
        f'iifname "{SERVER_DEVICE}" {drop}; }}\n'
        f"  chain outbound {{ type filter hook output priority 0; policy accept; "
        f'oifname "{SERVER_DEVICE}" {drop}; }}\n'
        f"}}\n"
    )


def shape(link: Link, bandwidth: str | None, loss: float) -> None:
    """Apply ``bandwidth`` (both ways) and ``loss`` to a link. Raises TestbedError (e.g. nft missing)."""
    if bandwidth is not None:
        run(["tc", *tbf_arguments(link.host_device, bandwidth)])
        run(["tc", "-n", link.namespace, *tbf_arguments(SERVER_DEVICE, bandwidth)])
    if loss > 0:
        run(["ip", "netns", "exec", link.namespace, "nft", "-f", "-"], stdin=loss_ruleset(loss))


def unshape(namespace: str) -> None:
    """Remove a namespace's loss rules (it takes its qdiscs with it); nothing to remove is fine."""
    if shutil.which("nft"):
        run(["ip", "netns", "exec", namespace, "nft", "delete", "table", "inet", LOSS_TABLE], missing_ok=True)


def read_shape(link: Link) -> LinkShape:
    """The rates and loss on a link as the kernel has them now."""
    loss = None
    if shutil.which("nft"):
        listing = run(["ip", "netns", "exec", link.namespace, "nft", "list", "table", "inet", LOSS_TABLE], True)
        loss = _loss_of(listing) if listing else None
    return LinkShape(_tbf_rate(link.host_device), _tbf_rate(SERVER_DEVICE, link.namespace), loss)


def _tbf_rate(device: str, namespace: str | None = None) -> float | None:
    inside = ["-n", namespace] if namespace else []
    qdiscs = json.loads(run(["tc", "-j", *inside, "qdisc", "show", "dev", device]) or "[]")
    rates = [q["options"]["rate"] * 8.0 for q in qdiscs if q.get("kind") == "tbf" and q.get("root")]
    return rates[0] if rates else None


def _loss_of(listing: str) -> float | None:
    for line in listing.splitlines():
        if "numgen random mod" in line:
            words = line.split()
            modulus, threshold = int(words[words.index("mod") + 1]), int(words[words.index("<") + 1])
            return 100.0 * threshold / modulus
    return None
