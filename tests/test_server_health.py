"""A failed server is kept out for a back-off, probed, and given tiles again once it answers.

Dispatch runs against a fake pool (servers that are up or down, probes that answer or not) on a
fake clock, which the servers' work advances: no model, no network, no sleeping, and the same
measured speeds every run. One test wires the same through a real pipeline.
"""

from __future__ import annotations

from concurrent.futures import Future

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privinfer.client.dispatch import NoServerLeftError, ServerHealth, dispatch, readmit_recovered
from privinfer.client.schedule import CapacityModel
from privinfer.errors import ConfigError
from privinfer.serve import EMBEDDING, PIXELS, Payload, ServerInfo, ServerPool, WorkBatch

INPUT = 64
TILE_SECONDS = 1e-3  # what a fake server takes per tile, on the fake clock


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakePool(ServerPool):
    """Servers answer zeros after ``TILE_SECONDS`` per tile of ``clock``'s time. ``down`` ones
    fail every call and every probe at once; ``flaky`` ones answer probes but fail calls.
    Everything submitted and probed is recorded."""

    def __init__(self, *names: str, clock: FakeClock | None = None) -> None:
        self.names = names
        self.clock = clock or FakeClock()
        self.down: set[str] = set()
        self.flaky: set[str] = set()
        self.sent: list[tuple[str, Payload]] = []
        self.probed: list[str] = []

    def servers(self) -> list[ServerInfo]:
        return [ServerInfo(name) for name in self.names]

    def submit(self, batch: WorkBatch, server: str) -> Future:
        self.sent.extend((server, p) for p in batch.payloads)
        future: Future = Future()
        if server in self.down | self.flaky:
            future.set_exception(ConnectionError(f"{server} is down"))
        else:
            self.clock.advance(TILE_SECONDS * len(batch.payloads))
            future.set_result(np.zeros((len(batch.payloads), 4, 124), np.float32))
        return future

    def probe(self, server: str) -> bool:
        self.probed.append(server)
        return server not in self.down

    def given_tiles(self, since: int = 0) -> set[str]:
        return {server for server, _ in self.sent[since:]}


def _payloads(count: int = 6, embeddings: int = 0) -> list[Payload]:
    """``count`` tiles, the first ``embeddings`` of them privatized (an embedding), the rest raw."""
    return [
        Payload(i, EMBEDDING, np.full((8, 4, 4), i, np.float32))
        if i < embeddings
        else Payload(i, PIXELS, np.full((INPUT, INPUT, 3), i, np.uint8))
        for i in range(count)
    ]


def _setup(*names: str, first: float = 2.0, longest: float = 30.0):
    clock = FakeClock()
    pool = FakePool(*names, clock=clock)
    capacity = CapacityModel.from_hints({s.name: s.capacity for s in pool.servers()})
    return pool, clock, capacity, ServerHealth(first, longest, clock)


def _dispatch(pool: FakePool, capacity, health, payloads=None):
    payloads = payloads or _payloads()
    pixels = {p.tile_index: float(INPUT * INPUT) for p in payloads}
    return dispatch(payloads, pool, capacity, health, pixels, clock=pool.clock)


def _frame(pool, capacity, health, payloads=None):
    payloads = payloads or _payloads()
    before = len(pool.sent)
    outputs = _dispatch(pool, capacity, health, payloads)
    assert sorted(outputs) == [p.tile_index for p in payloads]  # every tile answered, once
    return outputs, pool.given_tiles(before)


def test_a_failed_server_is_kept_out_for_its_back_off_then_probed_and_given_tiles_again():
    pool, clock, capacity, health = _setup("a", "b", "c")
    pool.down = {"b"}
    outputs, given = _frame(pool, capacity, health)
    assert "b" in given and {o.server for o in outputs.values()} == {"a", "c"}
    assert (
        health.out == ["b"] and capacity.servers == ["a", "c"] and health.retry_in("b") == pytest.approx(2.0, abs=0.05)
    )

    pool.down = set()  # b is back (restarted), but its back-off is not over: no probe, no tiles
    clock.advance(1.9)
    outputs, given = _frame(pool, capacity, health)
    assert given == {"a", "c"} and pool.probed == []  # measured equally fast: both are given tiles

    clock.advance(0.1)
    outputs, given = _frame(pool, capacity, health)
    assert pool.probed == ["b"] and "b" in {o.server for o in outputs.values()}
    assert health.out == [] and sorted(capacity.servers) == ["a", "b", "c"]


def test_a_readmitted_server_starts_again_from_its_hint_on_the_measured_scale():
    capacity = CapacityModel.from_hints({"a": 2.0, "b": 2.0, "c": 1.0})
    hint = dict(capacity.seconds_per_unit)
    capacity.observe("c", 1.0, 40 * hint["c"])  # c was measured very slow before it failed
    capacity.drop("c")
    capacity.readmit("c")
    assert capacity.seconds_per_unit["c"] == hint["c"] and "c" not in capacity.observations  # nothing measured
    capacity.drop("c")
    capacity.observe("a", 1.0, hint["a"] / 10)  # the servers turn out 10x faster than the hints guessed
    capacity.observe("b", 1.0, hint["b"] / 10)
    capacity.readmit("c")
    assert capacity.seconds_per_unit["c"] == pytest.approx(hint["c"] / 10)  # still half a's speed, as hinted
    capacity.observe("c", 1.0, 3 * hint["c"])
    assert capacity.seconds_per_unit["c"] == 3 * hint["c"]  # its first measurement replaces that, as for a new one
    with pytest.raises(KeyError):
        capacity.readmit("never-there")


def test_a_readmitted_server_is_measured_again():
    pool, clock, capacity, health = _setup("a", "b")
    pool.down = {"b"}
    _frame(pool, capacity, health)
    assert "b" not in capacity.seconds_per_unit and "b" not in capacity.observations
    pool.down = set()
    clock.advance(2.0)
    assert readmit_recovered(pool, capacity, health) == ["b"]
    outputs, given = _frame(pool, capacity, health)
    assert "b" in given and capacity.observations["b"] == 1


def test_the_back_off_doubles_while_probes_fail_up_to_its_limit():
    pool, clock, capacity, health = _setup("a", "b", first=2.0, longest=30.0)
    pool.down = {"b"}
    _frame(pool, capacity, health)
    first_frame = pool.sent[:]
    backoffs = [health.retry_in("b")]
    for _ in range(5):
        clock.advance(backoffs[-1] - 0.01)  # not yet: not probed
        _frame(pool, capacity, health)
        probes = len(pool.probed)
        clock.advance(0.01)
        _frame(pool, capacity, health)
        assert len(pool.probed) == probes + 1
        backoffs.append(health.retry_in("b"))
    assert backoffs == pytest.approx([2.0, 4.0, 8.0, 16.0, 30.0, 30.0], abs=0.05)
    assert pool.probed == ["b"] * 5
    # Probes never carry tiles: b was sent tiles only in the frame it failed.
    assert [p for s, p in pool.sent if s == "b"] == [p for s, p in first_frame if s == "b"]


def test_completing_a_batch_resets_the_back_off_but_failing_again_at_once_doubles_it():
    pool, clock, capacity, health = _setup("a", "b")
    pool.down = {"b"}
    _frame(pool, capacity, health)
    pool.down, pool.flaky = set(), {"b"}  # answers its probe, fails its tiles
    clock.advance(2.0)
    outputs, given = _frame(pool, capacity, health)
    assert "b" in given and {o.server for o in outputs.values()} == {"a"}
    assert health.retry_in("b") == pytest.approx(4.0, abs=0.05)

    pool.flaky = set()
    clock.advance(4.0)
    _frame(pool, capacity, health)  # probed, re-admitted, completes its tiles
    _frame(pool, capacity, health)
    pool.down = {"b"}
    _frame(pool, capacity, health)
    assert health.retry_in("b") == pytest.approx(2.0, abs=0.05)


def test_with_every_server_out_the_frame_fails_naming_the_next_probe_and_later_frames_recover():
    pool, clock, capacity, health = _setup("a", "b")
    pool.down = {"a", "b"}
    with pytest.raises(
        NoServerLeftError, match=r"no server left to run \d+ tiles: .*a is down.*next probe of a in 2.0 s"
    ):
        _dispatch(pool, capacity, health)
    clock.advance(1.0)
    with pytest.raises(NoServerLeftError, match=r"kept out after failing: a, b; next probe of a in 1.0 s"):
        _dispatch(pool, capacity, health)
    assert pool.probed == []

    pool.down = {"b"}
    clock.advance(1.0)
    outputs, _ = _frame(pool, capacity, health)
    assert {o.server for o in outputs.values()} == {"a"} and sorted(pool.probed) == ["a", "b"]
    assert health.out == ["b"] and health.retry_in("b") == pytest.approx(4.0, abs=0.05)


def test_a_probe_that_raises_is_a_server_that_did_not_answer():
    class BrokenProbe(FakePool):
        def probe(self, server: str) -> bool:
            raise OSError("no route to host")

    clock = FakeClock()
    pool = BrokenProbe("a", "b", clock=clock)
    capacity = CapacityModel.from_hints({"a": 1.0, "b": 1.0})
    health = ServerHealth(clock=clock)
    pool.down = {"b"}
    _frame(pool, capacity, health)
    pool.down = set()
    clock.advance(2.0)
    outputs, given = _frame(pool, capacity, health)
    assert given == {"a"} and health.retry_in("b") == pytest.approx(4.0, abs=0.05)


def test_back_offs_are_checked():
    for first, longest in ((0, 30), (2, 1), (-1, 5), (2, float("inf")), (float("nan"), 30)):
        with pytest.raises(ConfigError, match="server back-off"):
            ServerHealth(first, longest)


@settings(max_examples=150, deadline=None)
@given(
    servers=st.integers(1, 4),
    kinds=st.lists(st.booleans(), min_size=1, max_size=10),  # True: a privatized tile (embedding)
    frames=st.lists(
        st.tuples(st.sets(st.integers(0, 3)), st.sets(st.integers(0, 3)), st.floats(0, 40)), min_size=1, max_size=6
    ),
)
def test_no_failure_pattern_changes_what_is_sent_for_a_tile(servers, kinds, frames):
    """Whatever fails when, and whoever is re-admitted, every copy of a tile that leaves is its one
    payload (a privatized tile is never sent raw), and a frame either completes or says why not."""
    names = [f"s{i}" for i in range(servers)]
    pool, clock, capacity, health = _setup(*names)
    payloads = [
        Payload(i, EMBEDDING, np.full((8, 4, 4), i, np.float32))
        if privatized
        else Payload(i, PIXELS, np.full((INPUT, INPUT, 3), i, np.uint8))
        for i, privatized in enumerate(kinds)
    ]
    for down, flaky, wait in frames:
        pool.down = {names[i] for i in down if i < servers}
        pool.flaky = {names[i] for i in flaky if i < servers}
        clock.advance(wait)
        before = len(pool.sent)
        try:
            outputs = _dispatch(pool, capacity, health, payloads)
        except NoServerLeftError:
            assert not capacity.servers
            continue
        assert sorted(outputs) == list(range(len(kinds)))
        for index, output in outputs.items():
            # Answered by a server that was sent this tile and was neither down nor flaky.
            assert any(s == output.server and p is payloads[index] for s, p in pool.sent[before:])
            assert output.server not in pool.down | pool.flaky
        assert set(capacity.servers).isdisjoint(health.out) and set(capacity.servers) | set(health.out) == set(names)
    for _, sent in pool.sent:
        assert sent is payloads[sent.tile_index]


def test_a_pipeline_gives_a_recovered_local_server_tiles_again(dog_rgb):
    from privinfer.pipeline import Pipeline, PipelineConfig
    from privinfer.serve import create_pool

    clock = FakeClock()
    from fakes import FlakyPool

    pool = FlakyPool(create_pool("threads", 2), {"local-0"})
    # Fixed tiles: both frames are cut alike, so their detections can be compared.
    config = PipelineConfig(servers=2, obfuscator="unaltered", sensitive=(), partition="grid", tile=192)
    with Pipeline(config, pool=pool, health=ServerHealth(clock=clock)) as pipeline:
        first = pipeline(dog_rgb)
        assert "local-0" in [server for server, _ in pool.calls] and {t.server for t in first.tiles} == {"local-1"}
        pool.broken = set()
        clock.advance(2.0)
        second = pipeline(dog_rgb)
    assert "local-0" in {t.server for t in second.tiles}
    assert [d.label for d in second.detections] == [d.label for d in first.detections]


def test_the_next_frames_partition_adapts_to_the_servers_that_are_left():
    """A failed server's chunk is re-sent elsewhere unchanged; the next frame is cut for those left."""
    from fakes import FlakyPool, NullServers
    from privinfer.pipeline import Pipeline, PipelineConfig
    from privinfer.serve.recording import RecordingPool

    clock = FakeClock()
    pool = RecordingPool(FlakyPool(NullServers(3), {"null-0"}))  # records every try, the failing ones too
    # A wide frame at its own resolution: worth three chunks while three servers answer.
    config = PipelineConfig(servers=3, sensitive=(), work_size=None, discovery="blind", learn_capacities=False)
    frame = np.random.default_rng(0).integers(0, 256, (320, 1024, 3), dtype=np.uint8)
    with Pipeline(config, pool=pool, health=ServerHealth(clock=clock)) as pipeline:
        first = pipeline(frame)
        tried = list(pool.sent)
        second = pipeline(frame)
    sent_first = [r for r in first.tiles if r.server is not None]
    assert len(sent_first) == 3 and "null-0" in [server for server, _ in tried]
    assert {r.server for r in sent_first} == {"null-1", "null-2"}, "the broken server's chunk went elsewhere"
    assert len(tried) == 4, "three chunks, one of them sent twice"
    copies: dict[int, set[bytes]] = {}
    for _, payload in tried:
        copies.setdefault(payload.tile_index, set()).add(payload.data.tobytes())
    assert all(len(versions) == 1 for versions in copies.values()), "a re-sent chunk is the very same bytes"
    sent_second = [r for r in second.tiles if r.server is not None]
    assert len(sent_second) == 2 and {r.server for r in sent_second} == {"null-1", "null-2"}


@pytest.mark.slow  # two worker processes load the model: ~10 s
def test_a_process_server_whose_worker_died_comes_back_through_its_probes():
    import multiprocessing
    import os
    import signal
    import time
    from concurrent.futures.process import BrokenProcessPool

    from privinfer.serve.local import ProcessPool

    others = set(multiprocessing.active_children())
    with ProcessPool(1, threads=1) as pool:
        assert pool.probe("local-0")
        (worker,) = set(multiprocessing.active_children()) - others
        os.kill(worker.pid, signal.SIGKILL)
        batch = WorkBatch("full", tuple(_payloads(1)))
        with pytest.raises(BrokenProcessPool):
            pool.submit(batch, "local-0").result(timeout=60)
        assert not pool.probe("local-0")  # broken for good: a new worker is started, loading its model
        deadline = time.monotonic() + 120
        while not pool.probe("local-0"):
            assert time.monotonic() < deadline, "the new worker never answered"
        raw = pool.submit(batch, "local-0").result(timeout=60)
        assert raw.shape[0] == 1 and raw.shape[2] == 124
