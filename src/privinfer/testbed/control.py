"""Bringing the testbed up, reporting on it, and taking it down.

``up``: for each server a namespace and link (``network``), its shaping (``shaping``), then
``privinfer serve`` inside it (``processes``), waiting until every server answers ServerReady.
What was built is recorded in ``<cache>/testbed/state.json`` with one log and pid file per server.
``down`` finds the testbed's namespaces and devices by name, so it cleans up after a crash too,
and does nothing when nothing is there.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from privinfer.assets import cache_dir
from privinfer.errors import TestbedError
from privinfer.serve import security
from privinfer.testbed import cpu_budget, network, processes, shaping
from privinfer.testbed.config import ServerSpec, TestbedConfig
from privinfer.testbed.network import Link
from privinfer.testbed.shaping import LinkShape

Progress = Callable[[str], None]


def _silent(_: str) -> None:
    pass


@dataclass(frozen=True)
class TestbedServer:
    """One running server: its link, what it was given, its process and log."""

    __test__ = False

    link: Link
    spec: ServerSpec
    port: int
    pid: int
    log: Path

    @property
    def address(self) -> str:
        return f"{self.link.server_address}:{self.port}"


@dataclass(frozen=True)
class Testbed:
    """A testbed that is up: ``addresses`` are what `privinfer run --servers` takes."""

    __test__ = False

    config: TestbedConfig
    servers: tuple[TestbedServer, ...]

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(server.address for server in self.servers)

    def kill(self, index: int) -> None:
        """SIGKILL server ``index``'s process (a crash, for tests); its link stays up."""
        processes.stop(self.servers[index].link.namespace, hard=True)

    def restart(self, index: int, progress: Progress = _silent) -> Testbed:
        """Start server ``index`` again, on the same link and address with the same options (after
        ``kill``; a server still running is stopped first), and wait until it answers ServerReady.
        Returns the testbed with the new process (also recorded in the state file); its log goes on
        in the same file.

        Raises TestbedError: the server exits while starting, or is not ready in time.
        """
        server = self.servers[index]
        processes.stop(server.link.namespace)
        command = processes.server_command(server.link, server.spec, self.config)
        pid = processes.start(command, server.log, append=True)
        (state_dir() / f"server-{server.link.index}.pid").write_text(f"{pid}\n")
        restarted = replace(server, pid=pid)
        testbed = replace(self, servers=tuple(restarted if s is server else s for s in self.servers))
        _write_state(testbed)
        processes.wait_ready(server.address, pid, server.log, self.config.ready_timeout_s, self.config.token_file)
        progress(f"{server.address} restarted and ready (pid {pid})")
        return testbed


@dataclass(frozen=True)
class ServerStatus:
    """What ``status`` finds for one server."""

    server: TestbedServer
    shape: LinkShape
    running: bool  # its process exists
    live: bool  # it answered ServerLive over its link
    cpu_budget: float | None = None  # cores, as the kernel's CFS quota holds it (None: no budget)


def state_dir() -> Path:
    return cache_dir() / "testbed"


def unavailable() -> str | None:
    """Why a testbed cannot be built here (not root, no iproute2), or None when it can."""
    if os.geteuid() != 0:
        return "the testbed needs root (network namespaces, tc, nftables)"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"'{tool}' is not installed: {network.install_hint(tool)}"
    try:
        network.run(["ip", "netns", "list"])
    except TestbedError as error:
        return f"network namespaces are not available: {error}"
    return None


def up(config: TestbedConfig, progress: Progress = _silent) -> Testbed:
    """Build the links and start the servers; returns the testbed once every server is ready.

    Raises:
        ConfigError: a bad config, an unreadable token file.
        TestbedError: not root, a missing tool (naming its Debian package), a testbed already up,
            a subnet in use on this machine, a server that does not start. Whatever was built is
            taken down again before the error is raised.
    """
    config.validate()
    _require_tools(config)
    if config.token_file is not None:
        security.read_token(config.token_file)  # unreadable: fail here, before anything is built
    existing = network.our_namespaces() + network.our_devices()
    if existing:
        raise TestbedError(f"a testbed is already up ({', '.join(existing)}): run `privinfer testbed down` first")
    network.check_subnet_free(config.subnet)
    folder = state_dir()
    folder.mkdir(parents=True, exist_ok=True)
    servers = []
    try:
        for link, spec in zip(network.plan_links(config.subnet, len(config.servers)), config.servers, strict=True):
            network.create(link)
            shaping.shape(link, spec.bandwidth, spec.loss)
            if spec.cpu is not None:
                cpu_budget.create(link.index, spec.cpu)
            log = folder / f"server-{link.index}.log"
            pid = processes.start(processes.server_command(link, spec, config), log)
            (folder / f"server-{link.index}.pid").write_text(f"{pid}\n")
            servers.append(TestbedServer(link, spec, config.port, pid, log))
            progress(f"{link.namespace}: {link.server_address}/{link.prefix} via {link.host_device}, {_describe(spec)}")
        testbed = Testbed(config, tuple(servers))
        _write_state(testbed)
        for server in servers:
            processes.wait_ready(server.address, server.pid, server.log, config.ready_timeout_s, config.token_file)
            progress(f"{server.address} ready (pid {server.pid})")
    except BaseException:  # KeyboardInterrupt too: leave nothing behind
        down()
        raise
    return testbed


def down(progress: Progress = _silent) -> list[str]:
    """Stop the servers, remove their namespaces, links and loss rules; the names removed.
    Safe to repeat: with nothing up it removes nothing. Raises TestbedError when not root."""
    if os.geteuid() != 0:
        raise TestbedError("the testbed needs root to take it down (network namespaces)")
    removed = []
    for namespace in network.our_namespaces():
        pids = processes.stop(namespace)
        shaping.unshape(namespace)
        # The veth first: deleting it is immediate, a namespace's devices go asynchronously.
        network.remove_device(network.device_of(namespace))
        network.remove(namespace)
        removed.append(namespace)
        progress(f"{namespace}: removed" + (f" (stopped pid {', '.join(map(str, pids))})" if pids else ""))
    for device in network.our_devices():
        network.remove_device(device)
        removed.append(device)
        progress(f"{device}: removed")
    if cpu_budget.unavailable() is None:
        for group in cpu_budget.remove_all():
            removed.append(group)
            progress(f"{group}: removed")
    folder = state_dir()
    for path in [folder / "state.json", *folder.glob("server-*.pid")]:
        path.unlink(missing_ok=True)
    return removed


def current() -> Testbed | None:
    """The testbed recorded as up, or None (its processes may have died since: see ``status``)."""
    path = state_dir() / "state.json"
    if not path.is_file():
        return None
    try:
        return _read_state(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as error:
        raise TestbedError(f"{path} is unreadable ({error}): run `privinfer testbed down` to start over") from None


def status(timeout_s: float = 2.0) -> list[ServerStatus]:
    """Each recorded server's link as the kernel has it, whether its process runs and answers ServerLive."""
    testbed = current()
    if testbed is None:
        return []
    present = set(network.our_namespaces())
    found = []
    for server in testbed.servers:
        if server.link.namespace not in present:
            found.append(ServerStatus(server, LinkShape(None, None, None), False, False))
            continue
        running = processes.is_running(server.pid) and server.pid in network.namespace_pids(server.link.namespace)
        live = running and processes.ask(server.address, "ServerLive", timeout_s, testbed.config.token_file)
        budget = cpu_budget.read(server.link.index) if server.spec.cpu is not None else None
        found.append(ServerStatus(server, shaping.read_shape(server.link), running, live, budget))
    return found


def _require_tools(config: TestbedConfig) -> None:
    reason = unavailable()
    if reason:
        raise TestbedError(reason)
    if any(s.cpu is not None for s in config.servers) and (reason := cpu_budget.unavailable()):
        raise TestbedError(f"CPU budgets cannot be enforced: {reason}")
    needed = {"nft": any(s.loss > 0 for s in config.servers), "taskset": any(s.cpus for s in config.servers)}
    for tool, wanted in needed.items():
        if wanted and shutil.which(tool) is None:
            raise TestbedError(f"'{tool}' is not installed: {network.install_hint(tool)}")


def _describe(spec: ServerSpec) -> str:
    parts = [f"bandwidth {spec.bandwidth or 'unshaped'}", f"loss {spec.loss:g}%"]
    parts += [f"threads {spec.threads}"] if spec.threads else []
    parts += [f"cpus {spec.cpus}"] if spec.cpus else []
    parts += [f"CPU budget {spec.cpu:g} core"] if spec.cpu is not None else []
    parts += [f"slowdown {spec.slowdown:g}x (test knob)"] if spec.slowdown != 1 else []
    return ", ".join(parts)


def _write_state(testbed: Testbed) -> None:
    state = asdict(testbed)
    state["config"]["token_file"] = str(testbed.config.token_file) if testbed.config.token_file else None
    for server in state["servers"]:
        server["log"] = str(server["log"])
    (state_dir() / "state.json").write_text(json.dumps(state, indent=2) + "\n")


def _read_state(state: dict) -> Testbed:
    config = dict(state["config"])
    config["servers"] = tuple(ServerSpec(**s) for s in config["servers"])
    config["token_file"] = Path(config["token_file"]) if config["token_file"] else None
    servers = tuple(
        TestbedServer(Link(**s["link"]), ServerSpec(**s["spec"]), s["port"], s["pid"], Path(s["log"]))
        for s in state["servers"]
    )
    return Testbed(TestbedConfig(**config), servers)
