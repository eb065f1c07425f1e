"""The servers' processes: ``privinfer serve`` started detached inside a namespace, asked whether it
is live over gRPC, and stopped.

A server is found by its namespace, not only by its pid file: the processes inside one of the
testbed's namespaces are the ones the testbed started there, so stopping them can never hit an
unrelated process that reused a pid.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc

from privinfer.errors import TestbedError
from privinfer.serve import security
from privinfer.testbed import cpu_budget
from privinfer.testbed.config import ServerSpec, TestbedConfig
from privinfer.testbed.network import Link, namespace_pids

# Started servers this process spawned, kept so they are reaped (no zombies) when stopped.
_CHILDREN: dict[int, subprocess.Popen] = {}


def server_command(link: Link, spec: ServerSpec, config: TestbedConfig) -> list[str]:
    """The command that runs server ``link.index`` inside its namespace (pure)."""
    command = ["ip", "netns", "exec", link.namespace]
    command += ["taskset", "-c", spec.cpus] if spec.cpus is not None else []
    command += [sys.executable, "-m", "privinfer.cli", "serve", "--host", link.server_address]
    command += ["--port", str(config.port), "--runtime", config.runtime]
    command += ["--threads", str(spec.threads)] if spec.threads is not None else []
    command += ["--slowdown", f"{spec.slowdown:g}"] if spec.slowdown != 1 else []
    command += ["--token-file", str(config.token_file)] if config.token_file is not None else []
    return cpu_budget.wrap(command, link.index) if spec.cpu is not None else command


def start(command: list[str], log: Path, append: bool = False) -> int:
    """Start ``command`` detached (own session, output to ``log``, after what is there if ``append``);
    its pid. ``sh`` (joining a CPU budget's group), ``ip netns exec`` and ``taskset`` exec the next
    program, so the pid is the server's own."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab" if append else "wb") as out:
        child = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    _CHILDREN[child.pid] = child
    return child.pid


def wait_ready(address: str, pid: int, log: Path, timeout_s: float, token_file: Path | None) -> None:
    """Block until the server at ``address`` answers ServerReady.

    Raises TestbedError when its process ends first (with the end of its log) or time runs out.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not is_running(pid):
            raise TestbedError(f"server {address} exited while starting; its log {log} ends:\n{tail(log)}")
        if ask(address, "ServerReady", 1.0, token_file):
            return
        time.sleep(0.2)
    raise TestbedError(f"server {address} not ready after {timeout_s:g} s; its log {log} ends:\n{tail(log)}")


def ask(address: str, call: str, timeout_s: float, token_file: Path | None = None) -> bool:
    """Whether the server answers ``ServerLive`` or ``ServerReady`` with true within the timeout."""
    request = {"ServerLive": pb.ServerLiveRequest, "ServerReady": pb.ServerReadyRequest}[call]()
    metadata = security.bearer_metadata(security.read_token(token_file) if token_file else None)
    # No proxy: testbed addresses exist only on this machine.
    with grpc.insecure_channel(address, options=[("grpc.enable_http_proxy", 0)]) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        try:
            answer = getattr(stub, call)(request, timeout=timeout_s, metadata=metadata)
        except grpc.RpcError:
            return False
    return bool(getattr(answer, "live" if call == "ServerLive" else "ready"))


def is_running(pid: int) -> bool:
    """Whether ``pid`` is a running (not zombie) process."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    if state == "Z":
        _reap(pid)
        return False
    return True


def stop(namespace: str, grace_s: float = 5.0, hard: bool = False) -> list[int]:
    """End the processes in one of the testbed's namespaces: SIGTERM, then SIGKILL after ``grace_s``
    (at once if ``hard``). Returns the pids that were signalled."""
    pids = namespace_pids(namespace)
    _signal(pids, signal.SIGKILL if hard else signal.SIGTERM)
    deadline = time.monotonic() + (0 if hard else grace_s)
    while any(is_running(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    _signal([p for p in pids if is_running(p)], signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while any(is_running(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return pids


def tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _signal(pids: list[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


def _reap(pid: int) -> None:
    child = _CHILDREN.pop(pid, None)
    if child is not None:
        child.wait()
