"""`privinfer serve`: a tile server over gRPC, speaking the Open Inference Protocol v2.

It implements ServerLive, ServerReady, ServerMetadata, ModelReady, ModelMetadata and ModelInfer
of the KServe / Triton ``GRPCInferenceService`` (stubs from ``tritonclient[grpc]``), so any
protocol client can call it, and privinfer's client can call any protocol server (MLServer,
Triton) that serves the same two models (see ``protocol.py``).

A bad request gets a gRPC status naming what is wrong (INVALID_ARGUMENT, NOT_FOUND,
RESOURCE_EXHAUSTED, UNAUTHENTICATED) and the server goes on serving; a failure inside the model
is INTERNAL. Model calls run one at a time (like a local server): concurrent requests queue, but
only up to ``max_in_flight`` of them (running or waiting). One more is refused at once with
RESOURCE_EXHAUSTED, a message saying the server is busy and the standard gRPC pushback hint
(trailing metadata ``grpc-retry-pushback-ms``), so that no client's work piles up here without
bound and the client can send it to another server instead (``grpc_client.ServerBusyCallError``).
"""

from __future__ import annotations

import functools
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import grpc
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc

from privinfer.errors import (
    BadRequestError,
    ConfigError,
    RequestError,
    RequestTooLargeError,
    ServerBusyError,
    UnauthenticatedError,
    UnknownModelError,
)
from privinfer.models import nanodet
from privinfer.serve import protocol, security
from privinfer.serve.worker import TileServer

log = logging.getLogger(__name__)

SERVER_NAME = "privinfer"
PUSHBACK_KEY = "grpc-retry-pushback-ms"  # gRPC's standard "retry after" hint, in trailing metadata
BUSY_PUSHBACK_MS = 20  # about one model call on a small chunk: when a busy server may have room again
HEALTH_THREADS = 4  # RPC threads beyond the in-flight limit: health and metadata calls answer while busy
_STATUS: dict[type[RequestError], grpc.StatusCode] = {
    BadRequestError: grpc.StatusCode.INVALID_ARGUMENT,
    UnknownModelError: grpc.StatusCode.NOT_FOUND,
    RequestTooLargeError: grpc.StatusCode.RESOURCE_EXHAUSTED,
    UnauthenticatedError: grpc.StatusCode.UNAUTHENTICATED,
    ServerBusyError: grpc.StatusCode.RESOURCE_EXHAUSTED,
}


def default_max_in_flight() -> int:
    """Requests a server admits at once by default: two per core (one computing and one waiting per
    core keeps the model busy; more would only queue, each adding a whole call's latency)."""
    return 2 * (os.cpu_count() or 1)


@dataclass(frozen=True)
class ServeConfig:
    """Everything `privinfer serve` needs. ``port`` 0 picks a free port."""

    host: str = "127.0.0.1"
    port: int = 8001
    runtime: str = "onnxruntime"
    device: str = "cpu"
    threads: int | None = None
    cut: str = nanodet.DEFAULT_CUT
    tls_cert: Path | None = None
    tls_key: Path | None = None
    token_file: Path | None = None
    max_message_bytes: int = 64 * 2**20
    limits: protocol.RequestLimits = field(default_factory=protocol.RequestLimits)
    # ModelInfer requests admitted at once (computing or waiting for the model); one more is refused
    # at once as busy. The RPC threads are this plus HEALTH_THREADS.
    max_in_flight: int = field(default_factory=default_max_in_flight)
    # A test knob, never for serving: each model call is made this many times slower (the server
    # sleeps after computing, holding its model), so fault tests get an honestly slow server.
    slowdown: float = 1.0


def _answering(method: Callable) -> Callable:
    """Turn our request errors into their gRPC status, anything else into INTERNAL: never die."""

    @functools.wraps(method)
    def guarded(self, request, context: grpc.ServicerContext):
        try:
            return method(self, request, context)
        except RequestError as error:
            status, message = _status_of(error), str(error)
            if isinstance(error, ServerBusyError):
                context.set_trailing_metadata(((PUSHBACK_KEY, str(BUSY_PUSHBACK_MS)),))
        except Exception as error:  # one bad call must not take the server down
            log.exception("%s failed", method.__name__)
            status, message = grpc.StatusCode.INTERNAL, f"{type(error).__name__}: {error}"
        context.abort(status, message)

    return guarded


def _status_of(error: RequestError) -> grpc.StatusCode:
    for kind in type(error).__mro__:
        if kind in _STATUS:
            return _STATUS[kind]
    return grpc.StatusCode.INVALID_ARGUMENT


class InferenceService(service_pb2_grpc.GRPCInferenceServiceServicer):
    """The protocol's health, metadata and inference calls over one ``TileServer``."""

    def __init__(
        self,
        server: TileServer,
        limits: protocol.RequestLimits,
        slowdown: float = 1.0,
        max_in_flight: int | None = None,
    ) -> None:
        self.server = server
        self.limits = limits
        self.slowdown = slowdown
        self.max_in_flight = max_in_flight or default_max_in_flight()
        geometry = server.runtime.geometry
        self.models = protocol.served_models(geometry.channels, geometry.stride)
        self._model_lock = threading.Lock()
        self._admitted = threading.BoundedSemaphore(self.max_in_flight)
        self._count_lock = threading.Lock()
        self.refused = 0  # requests refused as busy since the start (for load figures and tests)

    def ServerLive(self, request, context):
        return pb.ServerLiveResponse(live=True)

    def ServerReady(self, request, context):
        return pb.ServerReadyResponse(ready=True)  # the runtime is loaded before the port opens

    def ServerMetadata(self, request, context):
        return pb.ServerMetadataResponse(name=SERVER_NAME, version=version("privinfer"), extensions=[])

    @_answering
    def ModelReady(self, request, context):
        try:
            protocol.model_spec(self.models, request.name, request.version)
        except UnknownModelError:
            return pb.ModelReadyResponse(ready=False)
        return pb.ModelReadyResponse(ready=True)

    @_answering
    def ModelMetadata(self, request, context):
        spec = protocol.model_spec(self.models, request.name, request.version)
        return protocol.model_metadata(spec, self.server.runtime.platform)

    @_answering
    def ModelInfer(self, request, context):
        if not self._admitted.acquire(blocking=False):
            with self._count_lock:
                self.refused += 1
            raise ServerBusyError(
                f"server busy: {self.max_in_flight} requests in flight, its limit (--max-in-flight); "
                "send this one to another server or again shortly"
            )
        try:
            return self._infer(request)
        finally:
            self._admitted.release()

    def _infer(self, request) -> pb.ModelInferResponse:
        spec = protocol.model_spec(self.models, request.model_name, request.model_version)
        batch = protocol.decode_request(request, spec, self.limits)
        with self._model_lock:
            started = time.perf_counter()
            found = self.server.run(spec.name, batch)
            if self.slowdown > 1:  # the test knob: still busy, for (slowdown - 1) times the compute
                time.sleep((self.slowdown - 1) * (time.perf_counter() - started))
            compute_ms = (time.perf_counter() - started) * 1e3
        response = protocol.infer_response(spec, found, compute_ms)
        response.id = request.id
        return response


class BearerTokenInterceptor(grpc.ServerInterceptor):
    """Lets a call through only with ``authorization: Bearer <token>``; UNAUTHENTICATED otherwise."""

    _HANDLERS = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
    }

    def __init__(self, token: str) -> None:
        self._token = token

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or security.token_matches(handler_call_details.invocation_metadata, self._token):
            return handler
        make = self._HANDLERS[(handler.request_streaming, handler.response_streaming)]
        return make(self._deny, request_deserializer=handler.request_deserializer)

    @staticmethod
    def _deny(request, context: grpc.ServicerContext):
        context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token (authorization: Bearer ...)")


@dataclass
class RunningServer:
    """A started server: ``address`` (host:port actually bound), ``stop()`` to end it."""

    server: grpc.Server
    address: str
    port: int
    service: InferenceService

    def stop(self, grace_s: float | None = None) -> None:
        self.server.stop(grace_s).wait()

    def wait(self) -> None:
        self.server.wait_for_termination()


def start_server(config: ServeConfig, tile_server: TileServer | None = None) -> RunningServer:
    """Load the runtime (unless ``tile_server`` is given), open the port and start answering.

    Raises:
        ConfigError: unreadable token / TLS files, only one of cert and key, a port that cannot be
            bound, a slowdown below 1, an in-flight limit below 1.
        AssetMissingError: the model assets are not fetched.
    """
    if not 1 <= config.slowdown < math.inf:
        raise ConfigError(f"--slowdown {config.slowdown}: must be at least 1 (a test knob: times slower)")
    if config.max_in_flight < 1:
        raise ConfigError(f"--max-in-flight {config.max_in_flight}: must be at least 1 request")
    interceptors = [BearerTokenInterceptor(security.read_token(config.token_file))] if config.token_file else []
    credentials = security.server_credentials(config.tls_cert, config.tls_key)
    tiles = tile_server or TileServer(config.device, config.cut, config.runtime, config.threads)
    service = InferenceService(tiles, config.limits, config.slowdown, config.max_in_flight)
    threads = config.max_in_flight + HEALTH_THREADS
    server = grpc.server(
        ThreadPoolExecutor(threads, thread_name_prefix="privinfer-rpc"),
        interceptors=interceptors,
        # No RPC waits for a thread in an unbounded queue: past this gRPC itself refuses the call
        # (RESOURCE_EXHAUSTED, "Concurrent RPC limit exceeded!"), which the client also reads as busy.
        maximum_concurrent_rpcs=threads,
        options=[
            ("grpc.max_receive_message_length", config.max_message_bytes),
            ("grpc.max_send_message_length", -1),
            ("grpc.so_reuseport", 0),  # a second server on a taken port must fail, not share it
        ],
    )
    service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(service, server)
    target = f"{config.host}:{config.port}"
    try:
        port = server.add_secure_port(target, credentials) if credentials else server.add_insecure_port(target)
    except RuntimeError as error:
        raise ConfigError(f"cannot listen on {target}: {error}") from None
    if port == 0:
        raise ConfigError(f"cannot listen on {target} (in use, or not an address of this machine)")
    server.start()
    return RunningServer(server, f"{config.host}:{port}", port, service)


def serve(config: ServeConfig, announce: Callable[[str], None] = print) -> int:
    """Serve until SIGINT or SIGTERM; returns the exit code (0)."""
    running = start_server(config)
    runtime = running.service.server.runtime
    announce(
        f"privinfer serving {', '.join(sorted(running.service.models))} on {running.address} "
        f"(runtime {runtime.name}, device {config.device}, tls {'on' if config.tls_cert else 'off'}, "
        f"token {'on' if config.token_file else 'off'}, at most {running.service.max_in_flight} requests in flight)"
        + (f", slowed down {config.slowdown:g}x (test knob)" if config.slowdown > 1 else "")
    )
    if config.token_file and not config.tls_cert and config.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("a bearer token over plain TCP can be read on the network: add --tls-cert/--tls-key")
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    while not stopped.wait(0.5):  # a timed wait, so the signal handlers get to run
        pass
    running.stop(grace_s=2.0)
    return 0
