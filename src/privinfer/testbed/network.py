"""Network namespaces and the links to them: one namespace per server, one veth pair each.

Server ``i`` gets the namespace ``privinfer-tb<i>`` and the ``i``-th /30 of the testbed subnet:
the root namespace's end of the veth (``pitb<i>``) is ``.1`` of the block, the server's end
(``eth0`` inside the namespace) ``.2``. A namespace has no other interface than ``lo`` and no
default route, so a server can reach nothing but this machine's end of its own link, and the
root namespace forwards nothing to it from elsewhere: traffic stays on this machine.
"""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
from dataclasses import dataclass

from privinfer.errors import TestbedError
from privinfer.testbed.config import LINK_PREFIX

NAMESPACE_PREFIX = "privinfer-tb"
DEVICE_PREFIX = "pitb"
SERVER_DEVICE = "eth0"  # the server's end of its link, inside its namespace
_OURS_NAMESPACE = re.compile(rf"^{NAMESPACE_PREFIX}\d+$")
_OURS_DEVICE = re.compile(rf"^{DEVICE_PREFIX}\d+$")


@dataclass(frozen=True)
class Link:
    """Server ``index``'s namespace and point-to-point link."""

    index: int
    namespace: str
    host_device: str
    host_address: str
    server_address: str
    prefix: int = LINK_PREFIX


def plan_links(subnet: str, count: int) -> list[Link]:
    """The namespaces, device names and addresses of ``count`` servers in ``subnet`` (pure)."""
    network = ipaddress.IPv4Network(subnet)
    blocks = list(network.subnets(new_prefix=LINK_PREFIX))
    if count > len(blocks):
        raise TestbedError(f"subnet {subnet} has room for {len(blocks)} links, not {count}")
    return [
        Link(i, f"{NAMESPACE_PREFIX}{i}", f"{DEVICE_PREFIX}{i}", str(block[1]), str(block[2]), block.prefixlen)
        for i, block in enumerate(blocks[:count])
    ]


def create(link: Link) -> None:
    """The namespace, the veth pair, addresses, links up. Raises TestbedError naming the failed step."""
    run(["ip", "netns", "add", link.namespace])
    run(["ip", "link", "add", link.host_device, "type", "veth", "peer", "name", SERVER_DEVICE, "netns", link.namespace])
    run(["ip", "addr", "add", f"{link.host_address}/{link.prefix}", "dev", link.host_device])
    run(["ip", "link", "set", link.host_device, "up"])
    run(["ip", "-n", link.namespace, "addr", "add", f"{link.server_address}/{link.prefix}", "dev", SERVER_DEVICE])
    run(["ip", "-n", link.namespace, "link", "set", SERVER_DEVICE, "up"])
    run(["ip", "-n", link.namespace, "link", "set", "lo", "up"])


def our_namespaces() -> list[str]:
    """The testbed's namespaces that exist now (only names this module gives)."""
    listed = json.loads(run(["ip", "-j", "netns", "list"]) or "[]")
    return sorted((n["name"] for n in listed if _OURS_NAMESPACE.match(n["name"])), key=_index)


def our_devices() -> list[str]:
    """The testbed's veth ends in the root namespace that exist now."""
    listed = json.loads(run(["ip", "-j", "link", "show"]) or "[]")
    return sorted((d["ifname"] for d in listed if _OURS_DEVICE.match(d["ifname"])), key=_index)


def remove(namespace: str) -> None:
    """Delete one of our namespaces (its end of the veth goes with it, and so the pair)."""
    if _OURS_NAMESPACE.match(namespace):
        run(["ip", "netns", "del", namespace], missing_ok=True)


def remove_device(device: str) -> None:
    if _OURS_DEVICE.match(device):
        run(["ip", "link", "del", device], missing_ok=True)


def device_of(namespace: str) -> str:
    """The root namespace's end of the link into one of our namespaces."""
    return DEVICE_PREFIX + namespace.removeprefix(NAMESPACE_PREFIX)


def namespace_pids(namespace: str) -> list[int]:
    """Processes running in one of our namespaces (they can only be ones the testbed started)."""
    if namespace not in our_namespaces():
        return []
    return [int(pid) for pid in run(["ip", "netns", "pids", namespace]).split()]


def check_subnet_free(subnet: str) -> None:
    """Raises TestbedError if an interface of this machine other than ours already uses ``subnet``:
    the testbed must not shadow a real network."""
    network = ipaddress.IPv4Network(subnet)
    for device in json.loads(run(["ip", "-j", "addr", "show"]) or "[]"):
        if _OURS_DEVICE.match(device["ifname"]):
            continue
        for address in device.get("addr_info", []):
            if address.get("family") != "inet":
                continue
            interface = ipaddress.IPv4Interface(f"{address['local']}/{address['prefixlen']}")
            if interface.network.overlaps(network):
                raise TestbedError(
                    f"subnet {subnet} overlaps {interface} on {device['ifname']}: pick another private subnet"
                )


def run(command: list[str], missing_ok: bool = False, stdin: str | None = None) -> str:
    """Run a system tool; its stdout. Raises TestbedError with the tool's own message on failure
    (unless ``missing_ok`` and the failure says the thing does not exist)."""
    try:
        done = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise TestbedError(f"'{command[0]}' is not installed: {install_hint(command[0])}") from None
    if done.returncode != 0:
        message = done.stderr.strip() or done.stdout.strip()
        if missing_ok and re.search(r"No such file|Cannot find device|does not exist|No such", message):
            return ""
        raise TestbedError(f"'{' '.join(command)}' failed: {message}")
    return done.stdout


def install_hint(tool: str) -> str:
    package = {"ip": "iproute2", "tc": "iproute2", "nft": "nftables", "taskset": "util-linux"}.get(tool, tool)
    return f"install the Debian package with `apt-get install -y {package}`"


def _index(name: str) -> int:
    return int(re.sub(r"\D", "", name) or 0)
