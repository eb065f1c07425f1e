"""Remote servers over gRPC: a `ServerPool` whose servers are ``host:port`` addresses.

Each server is called with the Open Inference Protocol v2 (``protocol.py``), so it may be
``privinfer serve`` or any protocol server that serves the same two models. Calls run
concurrently (one gRPC future each); a server's error, refusal or missed deadline surfaces as a
`ServerCallError` from the batch's future, and dispatch then sends that batch elsewhere. A server
that refuses a call because it is busy (RESOURCE_EXHAUSTED with gRPC's pushback hint, gRPC's own
concurrent-RPC limit, or Triton's full queue) raises the subclass `ServerBusyCallError` instead:
dispatch sends the batch elsewhere without keeping the server out, since it is working, not broken.

Before a server that failed is given work again, ``probe`` asks it ServerReady (and ModelReady)
over a new connection with a short deadline: the old channel may be sitting in gRPC's own
reconnect back-off, which grows to minutes, while the server is back (restarted) already.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc

from privinfer.errors import ConfigError, ServerBusyCallError, ServerCallError
from privinfer.serve import protocol, security
from privinfer.serve.base import ServerInfo, ServerPool, WorkBatch

log = logging.getLogger(__name__)
# Triton's words when a model's queue (dynamic batching's max_queue_size) is full: a busy server.
TRITON_QUEUE_FULL = re.compile(r"exceeds maximum queue size", re.IGNORECASE)
PUSHBACK_KEY = "grpc-retry-pushback-ms"  # gRPC's standard retry hint (the server's busy refusals carry it)
_GRPC_OWN_LIMIT = "Concurrent RPC limit exceeded"  # grpcio's refusal past maximum_concurrent_rpcs
_ADDRESS = re.compile(r"^(?:\[(?P<ip6>[0-9a-fA-F:.]+)\]|(?P<host>[A-Za-z0-9.\-_]+)):(?P<port>\d{1,5})$")


@dataclass(frozen=True)
class RemoteOptions:
    """How to reach remote servers: bearer token file, CA file for TLS (None: plain TCP), deadlines."""

    token_file: Path | None = None
    tls_ca: Path | None = None
    deadline_s: float = 30.0  # per call; a server that takes longer has failed that call
    connect_timeout_s: float = 5.0  # for the readiness check when the pool is built
    probe_timeout_s: float = 1.0  # for the readiness check before a failed server is given work again
    max_message_bytes: int = 256 * 2**20


@dataclass(frozen=True)
class RemoteAnswer:
    """A server's detections (N, K, 6) and the time its model call took (None if not told)."""

    detections: np.ndarray
    compute_ms: float | None


def parse_address(text: str) -> str:
    """``host:port`` or ``[ipv6]:port``, checked. Raises ConfigError naming the bad address."""
    match = _ADDRESS.match(text.strip())
    if match is None or not 0 < int(match["port"]) < 65536:
        raise ConfigError(f"server address '{text}' is not host:port (e.g. 127.0.0.1:8001 or edge-1:8001)")
    return text.strip()


class GrpcPool(ServerPool):
    """Remote servers by address; ``capacities`` are their relative speed hints (default 1 each).

    Raises (when built):
        ConfigError: a malformed address, mismatched capacities, an unreadable token or CA file.
        ServerCallError: a server is unreachable, refuses the token, or does not serve both models.
    """

    def __init__(
        self,
        addresses: Sequence[str],
        capacities: Sequence[float] | None = None,
        options: RemoteOptions = RemoteOptions(),
        check: bool = True,
    ) -> None:
        names = [parse_address(a) for a in addresses]
        if not names or len(set(names)) != len(names):
            raise ConfigError(f"give one or more distinct server addresses, got {list(addresses)}")
        hints = list(capacities) if capacities is not None else [1.0] * len(names)
        if len(hints) != len(names) or any(c <= 0 for c in hints):
            raise ConfigError(f"give {len(names)} positive capacities for {', '.join(names)}, got {hints}")
        self.options = options
        self._metadata = security.bearer_metadata(
            security.read_token(options.token_file) if options.token_file else None
        )
        self._credentials = security.channel_credentials(options.tls_ca)
        self._settings = [
            ("grpc.max_receive_message_length", options.max_message_bytes),
            ("grpc.max_send_message_length", options.max_message_bytes),
            # Each channel its own connection: channels to one address otherwise share it, and a
            # probe's new channel would inherit the old one's reconnect back-off and its last error.
            ("grpc.use_local_subchannel_pool", 1),
        ]
        self._infos = [ServerInfo(name, float(c)) for name, c in zip(names, hints, strict=True)]
        self._channels = {name: _channel(name, self._credentials, self._settings) for name in names}
        self._stubs = {name: service_pb2_grpc.GRPCInferenceServiceStub(ch) for name, ch in self._channels.items()}
        # A server that does not answer now (down, still starting, behind a bad link) does not stop
        # the others: the pool starts without it, and the pipeline keeps it out until a probe finds
        # it ready (`unready`). Only when none answers is that an error.
        self._unready: list[str] = []
        self.refusals = dict.fromkeys(names, 0)  # calls each server refused as busy (load figures)
        problems: list[str] = []
        for name in names if check else ():
            try:
                # wait_for_ready: a server that is still starting gets until the timeout to open its port.
                self._check_ready(name, self._stubs[name], options.connect_timeout_s, wait_for_ready=True)
            except ServerCallError as error:
                problems.append(str(error))
                self._unready.append(name)
        if problems and len(problems) == len(names):
            self.close()
            raise ServerCallError("; ".join(problems))
        for problem in problems:
            log.warning("%s: starting without it, it is probed again after its back-off", problem)

    def servers(self) -> list[ServerInfo]:
        return list(self._infos)

    def unready(self) -> list[str]:
        return list(self._unready)

    def submit(self, batch: WorkBatch, server: str) -> Future:
        """A future of the detections; it raises ServerCallError if the server fails the call."""
        answer = self.infer(server, batch.model, batch.inputs())
        found: Future = Future()
        answer.add_done_callback(lambda done: _forward(done, found))
        return found

    def infer(self, server: str, model: str, inputs: dict[str, np.ndarray]) -> Future:
        """Send one batch (the model's inputs by name, stacked); a future of a `RemoteAnswer`
        (detections and server compute time)."""
        request = protocol.infer_request(model, inputs)
        call = self._stubs[server].ModelInfer.future(request, timeout=self.options.deadline_s, metadata=self._metadata)
        answer: Future = Future()
        batch = len(next(iter(inputs.values())))
        call.add_done_callback(lambda done: self._settle(done, answer, server, batch))
        return answer

    def probe(self, server: str) -> bool:
        """Whether ``server`` is ready (both models) within ``probe_timeout_s``, asked over a new
        connection, which then replaces the old one. A server that is down fails fast (refused) or
        at the deadline (unreachable)."""
        channel = _channel(server, self._credentials, self._settings)
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        try:
            self._check_ready(server, stub, self.options.probe_timeout_s, wait_for_ready=False)
        except ServerCallError:
            channel.close()
            return False
        # Closing cancels any call still on the old channel: only ones dispatch has already given up on.
        old, self._channels[server], self._stubs[server] = self._channels[server], channel, stub
        old.close()
        return True

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()

    def _settle(self, call: grpc.Future, answer: Future, server: str, batch: int) -> None:
        try:
            response = call.result()
            found = protocol.decode_response(response, batch, server)
        except grpc.RpcError as error:
            failure = call_error(server, error)
            if isinstance(failure, ServerBusyCallError):
                self.refusals[server] += 1  # done callbacks run on gRPC's threads: one += per call
            answer.set_exception(failure)
            return
        except ServerCallError as error:
            answer.set_exception(error)
            return
        timed = response.parameters.get(protocol.COMPUTE_MS)
        answer.set_result(RemoteAnswer(found, timed.double_param if timed is not None else None))

    def _check_ready(self, server: str, stub, timeout: float, wait_for_ready: bool) -> None:
        """Raises ServerCallError unless ``server`` is ready and serves both models, all within ``timeout``."""
        deadline = time.monotonic() + timeout

        def left() -> float:
            return max(deadline - time.monotonic(), 1e-3)

        try:
            ready = stub.ServerReady(
                pb.ServerReadyRequest(), timeout=left(), metadata=self._metadata, wait_for_ready=wait_for_ready
            )
            if not ready.ready:
                raise ServerCallError(f"{server}: the server is up but not ready")
            for model in protocol.INPUT_NAMES:
                request = pb.ModelReadyRequest(name=model)
                if not stub.ModelReady(request, timeout=left(), metadata=self._metadata).ready:
                    raise ServerCallError(f"{server}: model '{model}' is not ready there")
        except grpc.RpcError as error:
            if isinstance(error, grpc.Call) and error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise ServerCallError(
                    f"{server}: no answer within {timeout:g} s (is a server listening there?)"
                ) from None
            raise call_error(server, error) from None


def _channel(address: str, credentials: grpc.ChannelCredentials | None, settings: list) -> grpc.Channel:
    if credentials is None:
        return grpc.insecure_channel(address, settings)
    return grpc.secure_channel(address, credentials, settings)


def _forward(done: Future, found: Future) -> None:
    error = done.exception()
    if error is not None:
        found.set_exception(error)
    else:
        found.set_result(done.result().detections)


def call_error(server: str, error: grpc.RpcError) -> ServerCallError:
    """The failed call as our error: `ServerBusyCallError` for a busy refusal, else `ServerCallError`.

    RESOURCE_EXHAUSTED alone does not mean busy: a request over a server's size limits gets it too,
    and would be refused again everywhere. Nor does UNAVAILABLE: it is also a server that is gone.
    Busy is RESOURCE_EXHAUSTED with gRPC's pushback hint (what ``privinfer serve`` sends), grpcio's
    own concurrent-RPC refusal, or Triton's refusal when a model's queue is full (UNAVAILABLE or
    RESOURCE_EXHAUSTED, by version, saying so: `TRITON_QUEUE_FULL`)."""
    code = error.code() if isinstance(error, grpc.Call) else None
    details = (error.details() if isinstance(error, grpc.Call) else str(error)) or ""
    message = f"{server}: {code.name if code else 'error'}: {details}"
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        pushback = _pushback_s(error)
        if pushback is not None or _GRPC_OWN_LIMIT in details:
            return ServerBusyCallError(message, pushback)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED) and TRITON_QUEUE_FULL.search(details):
        return ServerBusyCallError(message, None)
    return ServerCallError(message)


def _pushback_s(error: grpc.Call) -> float | None:
    """The server's retry hint in seconds, from the trailing metadata; None without a valid one."""
    for key, value in error.trailing_metadata() or ():
        if key == PUSHBACK_KEY:
            try:
                return max(0.0, int(value) / 1e3)
            except ValueError:
                return None
    return None
