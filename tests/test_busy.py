"""A busy server (RESOURCE_EXHAUSTED with a retry hint, or Triton's full queue) is sent nothing more this
round, not kept out; a server that is gone is kept out.

Dispatch runs against a fake pool whose servers refuse as busy for a number of calls, on a fake
clock and a recorded sleep: no model, no network. The real server's refusals and the client's
reading of them are checked in tests/test_grpc.py and tests/test_load.py.
"""

from __future__ import annotations

from concurrent.futures import Future

import grpc
import numpy as np
import pytest

from privinfer.client.dispatch import BUSY_MAX_WAIT_S, AllServersBusyError, ServerHealth, dispatch
from privinfer.client.schedule import CapacityModel
from privinfer.errors import ServerBusyCallError, ServerCallError
from privinfer.serve import PIXELS, Payload, ServerInfo, ServerPool, WorkBatch
from privinfer.serve.grpc_client import call_error

INPUT = 64


class BusyPool(ServerPool):
    """Servers answer zeros at once, except that each refuses its next ``busy[name]`` calls as busy
    (-1: for ever). Every call is recorded as (server, tile indices, refused)."""

    def __init__(
        self, *names: str, busy: dict[str, int] | None = None, hint_s: float | None = 0.02, refusal=None
    ) -> None:
        self.names, self.busy, self.hint_s = names, dict(busy or {}), hint_s
        # How a refusal reaches dispatch: privinfer serve's busy error, or a gRPC error as the client reads it.
        self.refusal = refusal or (lambda server: ServerBusyCallError(f"{server}: RESOURCE_EXHAUSTED: busy", hint_s))
        self.calls: list[tuple[str, tuple[int, ...], bool]] = []
        self.probed: list[str] = []

    def servers(self) -> list[ServerInfo]:
        return [ServerInfo(name) for name in self.names]

    def submit(self, batch: WorkBatch, server: str) -> Future:
        future: Future = Future()
        left = self.busy.get(server, 0)
        refused = left != 0
        self.calls.append((server, tuple(p.tile_index for p in batch.payloads), refused))
        if refused:
            self.busy[server] = left - 1 if left > 0 else left
            future.set_exception(self.refusal(server))
        else:
            future.set_result(np.zeros((len(batch.payloads), 4, 124), np.float32))
        return future

    def probe(self, server: str) -> bool:
        self.probed.append(server)
        return True


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _run(pool: BusyPool, count: int = 4, timeout_s: float = 60.0):
    payloads = [Payload(i, PIXELS, np.full((INPUT, INPUT, 3), i, np.uint8)) for i in range(count)]
    capacity = CapacityModel.from_hints({s.name: 1.0 for s in pool.servers()})
    health, sleeps = ServerHealth(), Sleeps()
    pixels = {p.tile_index: float(INPUT * INPUT) for p in payloads}
    outputs = dispatch(payloads, pool, capacity, health, pixels, timeout_s=timeout_s, sleep=sleeps)
    return outputs, capacity, health, sleeps


def test_a_busy_servers_tiles_go_to_another_at_once_without_a_back_off():
    pool = BusyPool("a", "b", busy={"a": -1})
    outputs, capacity, health, sleeps = _run(pool)
    assert sorted(outputs) == [0, 1, 2, 3] and {o.server for o in outputs.values()} == {"b"}
    refused = {i for server, tiles, no in pool.calls if no for i in tiles}
    assert refused and {server for server, _, no in pool.calls if no} == {"a"}
    resent = [tiles for server, tiles, no in pool.calls if server == "b" and not no]
    assert refused <= {i for tiles in resent for i in tiles}, "every refused tile went to b"
    assert sleeps == [], "another server was free: no waiting"
    assert health.out == [] and sorted(capacity.servers) == ["a", "b"], "busy is not failed: a stays admitted"
    assert "a" not in capacity.observations, "a refusal is not a measurement of a's speed"


def test_when_every_server_is_busy_dispatch_waits_briefly_then_retries_them_all():
    pool = BusyPool("a", "b", busy={"a": 3, "b": 3}, hint_s=None)
    outputs, capacity, health, sleeps = _run(pool)
    assert sorted(outputs) == [0, 1, 2, 3]
    assert len(sleeps) >= 1 and all(0 < s <= BUSY_MAX_WAIT_S for s in sleeps)
    assert sleeps == sorted(sleeps), "the wait grows while they stay busy"
    assert health.out == [] and sorted(capacity.servers) == ["a", "b"] and pool.probed == []


def test_the_servers_hint_sets_the_wait():
    pool = BusyPool("a", busy={"a": 1}, hint_s=0.05)
    _, _, _, sleeps = _run(pool, count=1)
    assert sleeps == [0.05]


def test_servers_busy_for_the_whole_timeout_fail_the_frame_explicitly():
    pool = BusyPool("a", "b", busy={"a": -1, "b": -1})
    with pytest.raises(AllServersBusyError, match=r"all servers busy: a, b refused \d+ tiles for 1.0 s"):
        _run(pool, timeout_s=1.0)
    assert len(pool.calls) > 2, "it retried before giving up"


def test_the_waits_add_up_to_the_timeout_and_no_more():
    pool = BusyPool("a", busy={"a": -1}, hint_s=None)
    sleeps = Sleeps()
    payloads = [Payload(0, PIXELS, np.zeros((INPUT, INPUT, 3), np.uint8))]
    capacity = CapacityModel.from_hints({"a": 1.0})
    with pytest.raises(AllServersBusyError):
        dispatch(payloads, pool, capacity, ServerHealth(), {0: 1.0}, timeout_s=0.5, sleep=sleeps)
    assert sum(sleeps) == pytest.approx(0.5) and max(sleeps) <= BUSY_MAX_WAIT_S


# ---------------------------------------------------------------- Triton's refusals


class FakeRpcError(grpc.RpcError, grpc.Call):
    """A failed gRPC call as grpcio raises it: a status code and details, no trailing metadata."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self):
        return self._code

    def details(self):
        return self._details

    def trailing_metadata(self):
        return ()

    def initial_metadata(self):
        return ()

    def is_active(self):
        return False

    def time_remaining(self):
        return None

    def cancel(self):
        return False

    def add_callback(self, callback):
        return False


# Triton's own words (2.51, dynamic batching's max_queue_size reached), under both codes it has used.
TRITON_FULL = "Exceeds maximum queue size"


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED])
def test_triton_s_full_queue_is_read_as_busy(code):
    error = call_error("triton:8001", FakeRpcError(code, TRITON_FULL))
    assert isinstance(error, ServerBusyCallError) and error.retry_after_s is None
    assert str(error) == f"triton:8001: {code.name}: {TRITON_FULL}"


@pytest.mark.parametrize(
    ("code", "details"),
    [
        (grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses; last error: Connection refused"),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "Received message larger than max (9000000 vs. 4194304)"),
        (grpc.StatusCode.INTERNAL, TRITON_FULL),  # the words alone, under another code, are not a refusal
    ],
)
def test_a_server_gone_or_a_request_too_large_is_a_failure_not_busy(code, details):
    error = call_error("triton:8001", FakeRpcError(code, details))
    assert isinstance(error, ServerCallError) and not isinstance(error, ServerBusyCallError)


def test_a_triton_that_refuses_as_full_gets_its_chunks_sent_elsewhere_and_stays_admitted():
    refusal = lambda server: call_error(server, FakeRpcError(grpc.StatusCode.UNAVAILABLE, TRITON_FULL))  # noqa: E731
    pool = BusyPool("triton-a", "b", busy={"triton-a": -1}, refusal=refusal)
    outputs, capacity, health, sleeps = _run(pool)
    assert sorted(outputs) == [0, 1, 2, 3] and {o.server for o in outputs.values()} == {"b"}
    assert any(server == "triton-a" and no for server, _, no in pool.calls)
    assert health.out == [] and sorted(capacity.servers) == ["b", "triton-a"] and pool.probed == []


def test_a_triton_that_is_gone_is_kept_out():
    gone = lambda server: call_error(server, FakeRpcError(grpc.StatusCode.UNAVAILABLE, "Connection refused"))  # noqa: E731
    pool = BusyPool("triton-a", "b", busy={"triton-a": -1}, refusal=gone)
    outputs, capacity, health, _ = _run(pool)
    assert {o.server for o in outputs.values()} == {"b"} and health.out == ["triton-a"]
