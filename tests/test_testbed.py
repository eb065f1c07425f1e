"""The network testbed: servers in their own network namespaces behind shaped links, on this machine.

Config, link plan and shaping commands are tested as pure functions anywhere. Tests that build a
testbed need root and iproute2 (they skip otherwise, saying why); each takes the testbed down in
its teardown, whatever happened.
"""

from __future__ import annotations

import ipaddress
import subprocess
import time
from collections import Counter, defaultdict

import numpy as np
import pytest
from skimage.data import astronaut

from matching import assert_same_detections
from privinfer import testbed
from privinfer.cli import main
from privinfer.errors import ConfigError, TestbedError
from privinfer.pipeline import Pipeline, PipelineConfig
from privinfer.serve import EMBEDDING, RemoteOptions, WorkBatch, create_pool
from privinfer.serve.recording import RecordingPool
from privinfer.testbed import cpu_budget, network, processes, shaping
from privinfer.types import Treatment

UNAVAILABLE = testbed.unavailable()
needs_testbed = pytest.mark.skipif(UNAVAILABLE is not None, reason=f"testbed unavailable: {UNAVAILABLE}")
RAW_ONLY = {"obfuscator": "unaltered", "sensitive": ()}


@pytest.fixture
def bed():
    """``bed(config)`` brings a testbed up; it is taken down after the test, pass or fail."""

    def bring_up(config: testbed.TestbedConfig) -> testbed.Testbed:
        testbed.down()  # a testbed left over from an interrupted run
        return testbed.up(config)

    yield bring_up
    testbed.down()
    assert network.our_namespaces() == [] and network.our_devices() == []


def _config(*specs: testbed.ServerSpec) -> testbed.TestbedConfig:
    return testbed.TestbedConfig(servers=specs, ready_timeout_s=180)


def _remote(bed_: testbed.Testbed, **overrides) -> Pipeline:
    pool = RecordingPool(create_pool("threads", bed_.addresses, remote=RemoteOptions(deadline_s=60)))
    return Pipeline(PipelineConfig(servers=bed_.addresses, **overrides), pool=pool)


def _same_detections(got, want) -> bool:
    """Same objects, paired by overlap; boxes and scores within the onnxruntime-vs-torch tolerance."""
    assert_same_detections(got, want, box_tol=0.01, score_tol=1e-3)
    return True


def _check_every_copy(results, sent_per_frame) -> list[tuple]:
    """(record, copies) for every tile sent in each frame, copies as (server, payload). Asserts what
    no retry may change: every kept tile was sent and every sent tile is kept; each copy is the kind
    and bytes its record says were sent; a privatized tile only ever left as an embedding."""
    checked = []
    for result, sent in zip(results, sent_per_frame, strict=True):
        by_tile = defaultdict(list)
        for server, payload in sent:
            by_tile[payload.tile_index].append((server, payload))
        records = {i: t for i, t in enumerate(result.tiles) if t.treatment != Treatment.DISCARDED}
        assert set(by_tile) == set(records)
        for index, copies in by_tile.items():
            record, first = records[index], copies[0][1]
            assert all(p.kind == record.payload and np.array_equal(p.data, first.data) for _, p in copies)
            if record.treatment == Treatment.PRIVATIZED:
                assert record.payload == EMBEDDING
            checked.append((record, copies))
    return checked


# ---------------------------------------------------------------- pure parts


def test_rates_are_read_in_tc_units():
    assert testbed.rate_bits("100mbit") == 100e6
    assert testbed.rate_bits("512kbit") == 512e3
    assert testbed.rate_bits("1.5gbit") == 1.5e9
    for bad in ("100", "fast", "0mbit", "-5mbit", "10mbps"):
        with pytest.raises(ConfigError, match="not a positive rate"):
            testbed.rate_bits(bad)


def test_config_lists_spread_over_servers(tmp_path):
    config = testbed.load_config(bandwidth=["100mbit", "20mbit"], loss=[1.0], threads=[2])
    assert [s.bandwidth for s in config.servers] == ["100mbit", "20mbit"]
    assert [(s.loss, s.threads) for s in config.servers] == [(1.0, 2), (1.0, 2)]
    assert len(testbed.load_config().servers) == 3
    with pytest.raises(ConfigError, match="one for each of the 3"):
        testbed.load_config(count=3, bandwidth=["1mbit", "2mbit"])
    with pytest.raises(ConfigError, match="loss 100"):
        testbed.load_config(loss=[100])
    with pytest.raises(ConfigError, match="private IPv4"):
        testbed.load_config(subnet="8.8.8.0/24")
    with pytest.raises(ConfigError, match="cpus"):
        testbed.load_config(cpus=["zero"])
    toml = tmp_path / "bed.toml"
    toml.write_text('port = 9001\n[[servers]]\nbandwidth = "5mbit"\n[[servers]]\nthreads = 2\ncpus = "0-1"\n')
    config = testbed.load_config(toml, loss=[0.5])
    assert config.port == 9001 and [s.bandwidth for s in config.servers] == ["5mbit", None]
    assert config.servers[1] == testbed.ServerSpec(None, 0.5, 2, "0-1")
    toml.write_text("[[servers]]\nbandwith = '5mbit'\n")
    with pytest.raises(ConfigError, match="unknown keys \\['bandwith'\\]"):
        testbed.load_config(toml)


def test_links_are_disjoint_point_to_point_blocks_of_the_subnet():
    links = network.plan_links("10.77.0.0/24", 64)
    subnet = ipaddress.ip_network("10.77.0.0/24")
    blocks = [ipaddress.ip_interface(f"{link.server_address}/{link.prefix}").network for link in links]
    assert all(block.subnet_of(subnet) for block in blocks) and len(set(blocks)) == 64
    for link, block in zip(links, blocks, strict=True):
        assert {link.host_address, link.server_address} == {str(a) for a in block.hosts()}
        assert len(link.host_device) <= 15 and link.namespace.startswith(network.NAMESPACE_PREFIX)
    with pytest.raises(TestbedError, match="room for 64"):
        network.plan_links("10.77.0.0/24", 65)


def test_shaping_commands():
    assert shaping.tbf_arguments("pitb0", "5mbit") == [
        "qdisc", "replace", "dev", "pitb0", "root", "tbf", "rate", "5000000bit", "burst", "16384", "latency", "100ms",
    ]  # fmt: skip
    assert "burst 1250000 " in " ".join(shaping.tbf_arguments("pitb0", "1gbit")) + " "  # 10 ms at the rate
    rules = shaping.loss_ruleset(1.5)
    assert rules.count("numgen random mod 10000 < 150 drop") == 2
    assert 'iifname "eth0"' in rules and 'oifname "eth0"' in rules
    assert shaping._loss_of(rules) == 1.5


def test_server_command_runs_inside_the_namespace():
    link = network.plan_links("10.77.0.0/24", 2)[1]
    spec = testbed.ServerSpec(threads=2, cpus="1")
    command = processes.server_command(link, spec, testbed.TestbedConfig(port=9001))
    assert command[:7] == ["ip", "netns", "exec", "privinfer-tb1", "taskset", "-c", "1"]
    text = " ".join(command)
    assert "serve --host 10.77.0.6 --port 9001 --runtime onnxruntime --threads 2" in text
    assert "--slowdown" not in text
    slowed = processes.server_command(link, testbed.ServerSpec(slowdown=10), testbed.TestbedConfig())
    assert slowed[-2:] == ["--slowdown", "10"]
    with pytest.raises(ConfigError, match="slowdown 0.5 must be at least 1"):
        testbed.ServerSpec(slowdown=0.5).validate("server 0")


def test_without_root_the_commands_say_so_in_one_line(monkeypatch, capsys):
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert "needs root" in testbed.unavailable()
    for action in ("up", "down"):
        assert main(["testbed", action]) == 2
        assert capsys.readouterr().err.strip().startswith("privinfer: error: the testbed needs root")


@needs_testbed
def test_a_missing_tool_is_named_with_its_package(monkeypatch):
    import shutil

    which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda tool: None if tool in ("nft", "taskset") else which(tool))
    with pytest.raises(TestbedError, match="'nft' is not installed.*apt-get install -y nftables"):
        testbed.up(_config(testbed.ServerSpec(loss=1.0)))
    with pytest.raises(TestbedError, match="'taskset' is not installed.*apt-get install -y util-linux"):
        testbed.up(_config(testbed.ServerSpec(cpus="0")))
    assert network.our_namespaces() == []


def test_a_subnet_in_use_on_this_machine_is_refused():
    with pytest.raises(TestbedError, match="overlaps 127.0.0.1/8 on lo"):
        network.check_subnet_free("127.0.0.0/24")


# ---------------------------------------------------------------- on a real testbed (root)


@needs_testbed
def test_three_servers_over_shaped_links_give_the_local_detections(bed, dog_rgb, capsys):
    config = _config(
        testbed.ServerSpec("200mbit", threads=1),
        testbed.ServerSpec("100mbit", threads=1),
        testbed.ServerSpec("50mbit", threads=1),
    )
    up = bed(config)
    assert up.addresses == ("10.77.0.2:8001", "10.77.0.6:8001", "10.77.0.10:8001")
    found = testbed.status()
    assert [s.live for s in found] == [True] * 3
    assert [s.shape.to_server_bits for s in found] == [200e6, 100e6, 50e6]
    assert [s.shape.to_client_bits for s in found] == [200e6, 100e6, 50e6]
    assert main(["testbed", "status"]) == 0 and "50mbit" in capsys.readouterr().out

    with Pipeline(PipelineConfig(servers=2, tile=192, **RAW_ONLY)) as local:
        want = local(dog_rgb)
    with _remote(up, tile=192, **RAW_ONLY) as remote:
        got = remote(dog_rgb)
    assert _same_detections(got.detections, want.detections)
    assert {"dog", "bicycle"} <= {d.label for d in got.detections}
    assert [(t.box, t.treatment, t.bytes) for t in got.tiles] == [(t.box, t.treatment, t.bytes) for t in want.tiles]
    assert {t.server for t in got.tiles} <= set(up.addresses)

    assert testbed.down() == ["privinfer-tb0", "privinfer-tb1", "privinfer-tb2"]  # the veths go with them
    assert network.our_devices() == []
    assert testbed.down() == [] and testbed.status() == []
    assert all(not processes.is_running(s.pid) for s in up.servers)


@needs_testbed
def test_a_server_that_does_not_start_leaves_nothing_behind(bed, tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="no-such-token"):
        bed(testbed.TestbedConfig(servers=(testbed.ServerSpec(),), token_file=tmp_path / "no-such-token"))

    def failing(link, spec, config):
        return ["ip", "netns", "exec", link.namespace, "sh", "-c", "echo cannot start >&2; exit 3"]

    monkeypatch.setattr(processes, "server_command", failing)
    with pytest.raises(TestbedError, match="exited while starting(.|\n)*cannot start"):
        bed(_config(testbed.ServerSpec("10mbit"), testbed.ServerSpec()))
    assert network.our_namespaces() == [] and network.our_devices() == [] and testbed.current() is None


@pytest.mark.slow
@needs_testbed
def test_a_server_killed_mid_video_loses_no_frame_and_no_tile_changes_treatment(bed):
    # A face moving through the frame: privatized (embedding) tiles as well as raw ones.
    canvas = astronaut()
    frames = [np.ascontiguousarray(canvas[3 * i : 3 * i + 448, 4 * i : 4 * i + 448]) for i in range(10)]
    options = {"tile": 160, "obfuscator": "channel-mask", "sensitive": ("faces",), "learn_capacities": False}
    with Pipeline(PipelineConfig(servers=2, **options)) as local:
        want = [local(frame) for frame in frames]

    up = bed(_config(*[testbed.ServerSpec("100mbit", threads=1)] * 3))
    results, sent_per_frame, victim = [], [], None
    with _remote(up, **options) as remote:
        for index, frame in enumerate(frames):
            if index == 4:
                # The server the schedule trusts most: it gets this frame's first (biggest) tile.
                victim = min(remote.capacity.servers, key=lambda s: remote.capacity.seconds_per_unit[s])
                up.kill(up.addresses.index(victim))
            before = len(remote.pool.sent)
            results.append(remote(frame))
            sent_per_frame.append(remote.pool.sent[before:])

    assert [r.frame for r in results] == list(range(10))
    for got, expected in zip(results, want, strict=True):
        assert _same_detections(got.detections, expected.detections)
        assert [(t.box, t.treatment) for t in got.tiles] == [(t.box, t.treatment) for t in expected.tiles]
    assert any(t.treatment == Treatment.PRIVATIZED for r in results for t in r.tiles)
    # A resend is the very same payload (kind and bytes), and the record says what was sent.
    resent = sum(len(copies) > 1 for _, copies in _check_every_copy(results, sent_per_frame))
    assert resent, "the killed server was given no tile after it died"
    assert all(t.server != victim for r in results[4:] for t in r.tiles)
    assert any(server == victim for server, _ in sent_per_frame[4])


@pytest.mark.slow
@needs_testbed
def test_a_slow_link_gets_fewer_tiles_once_its_speed_is_learned(bed, dog_rgb):
    up = bed(_config(testbed.ServerSpec("5mbit", threads=1), testbed.ServerSpec("200mbit", threads=1)))
    slow, fast = up.addresses
    with _remote(up, tile=192, **RAW_ONLY) as remote:
        results = [remote(dog_rgb) for _ in range(5)]
        learned = dict(remote.capacity.seconds_per_unit)
    first = Counter(t.server for t in results[0].tiles)
    assert first[slow] and first[fast]  # equal hints: both get tiles before anything is measured
    later = Counter(t.server for r in results[1:] for t in r.tiles)
    assert later[slow] < later[fast], later
    assert learned[slow] > 3 * learned[fast]
    # With the slow link left out, a frame takes the fast link's time, not the slow one's.
    assert results[-1].timings_ms["servers"] < results[0].timings_ms["servers"] / 2


@pytest.mark.slow
@needs_testbed
def test_a_lossy_link_still_answers_and_reports_its_loss(bed, dog_rgb):
    import shutil

    if shutil.which("nft") is None:
        pytest.skip("packet loss needs nftables: apt-get install -y nftables")
    up = bed(_config(testbed.ServerSpec("50mbit", loss=3.0, threads=1)))
    (found,) = testbed.status()
    assert found.live and found.shape.loss == 3.0
    with _remote(up, tile=192, **RAW_ONLY) as remote:
        result = remote(dog_rgb)
    assert {"dog", "bicycle"} <= {d.label for d in result.detections}


class _KillOnEmbedding(RecordingPool):
    """Records what is sent; once ``armed``, kills the server about to be sent a batch of embeddings
    (privatized tiles) just before sending it, so that batch, and any other in flight to that
    server, must be sent again elsewhere."""

    def __init__(self, inner, bed_: testbed.Testbed) -> None:
        super().__init__(inner)
        self.bed, self.armed, self.victim = bed_, False, None

    def submit(self, batch: WorkBatch, server: str):
        if self.armed and batch.model == "tail":
            self.armed, self.victim = False, server
            self.bed.kill(self.bed.addresses.index(server))
        return super().submit(batch, server)


@pytest.mark.slow
@needs_testbed
def test_a_restarted_server_gets_tiles_again_and_no_retry_sends_a_privatized_tile_raw(bed):
    canvas = astronaut()  # a face moving through the frame: privatized tiles as well as raw ones
    frames = [np.ascontiguousarray(canvas[3 * i : 3 * i + 448, 4 * i : 4 * i + 448]) for i in range(12)]
    options = {"tile": 160, "obfuscator": "channel-mask", "sensitive": ("faces",), "learn_capacities": False}
    with Pipeline(PipelineConfig(servers=2, **options)) as local:
        want = [local(frame) for frame in frames]

    up = bed(_config(*[testbed.ServerSpec("100mbit", threads=1)] * 3))
    pool = _KillOnEmbedding(create_pool("threads", up.addresses, remote=RemoteOptions(deadline_s=60)), up)
    results, sent_per_frame, killed_at, restart_at = [], [], None, None
    with Pipeline(PipelineConfig(servers=up.addresses, **options), pool=pool) as remote:
        for index, frame in enumerate(frames):
            pool.armed = pool.armed or index == 3
            if index == restart_at:
                up = up.restart(up.addresses.index(pool.victim))
                # Its back-off, doubled by each probe that found it down, must pass before it is asked again.
                assert pool.victim in remote.health.out
                time.sleep(remote.health.retry_in(pool.victim))
            before = len(pool.sent)
            results.append(remote(frame))
            sent_per_frame.append(pool.sent[before:])
            if pool.victim is not None and killed_at is None:
                killed_at, restart_at = index, index + 3
    victim = pool.victim
    assert killed_at == 3, "no embedding batch was sent in frame 3"

    # Every frame, in order, each tile answered once, as without the crash.
    assert [r.frame for r in results] == list(range(len(frames)))
    for got, expected in zip(results, want, strict=True):
        assert _same_detections(got.detections, expected.detections)
        assert [(t.box, t.treatment) for t in got.tiles] == [(t.box, t.treatment) for t in expected.tiles]
        assert all(t.server is not None for t in got.tiles if t.treatment != Treatment.DISCARDED)

    # Out while down; after the restart and its back-off, probed, answering, and given tiles again.
    assert all(t.server != victim for r in results[killed_at + 1 : restart_at] for t in r.tiles)
    assert any(t.server == victim for r in results[restart_at:] for t in r.tiles)
    victim_probes = [answered for server, answered in pool.probes if server == victim]
    assert victim_probes[-1] is True and victim_probes.count(True) == 1
    assert victim not in remote.health.out

    # No retry changes a payload: every copy of a tile is the same kind and bytes, what its record
    # says was sent; a privatized tile only ever leaves as an embedding.
    retried_privatized = sum(
        record.treatment == Treatment.PRIVATIZED and len({server for server, _ in copies}) > 1
        for record, copies in _check_every_copy(results, sent_per_frame)
    )
    assert retried_privatized, "no privatized tile was sent again after the crash"


@pytest.mark.slow
@needs_testbed
def test_a_server_ten_times_slower_gets_far_fewer_tiles_and_every_frame_completes(bed, dog_rgb):
    # `--slowdown 10`: each of its model calls keeps it busy ten times as long as the computation took.
    up = bed(_config(testbed.ServerSpec(threads=1, slowdown=10), *[testbed.ServerSpec(threads=1)] * 2))
    slow, *fast = up.addresses
    with _remote(up, tile=192, **RAW_ONLY) as remote:
        results = [remote(dog_rgb) for _ in range(6)]
        learned = dict(remote.capacity.seconds_per_unit)
    for result in results:
        assert all(t.server is not None for t in result.tiles if t.treatment != Treatment.DISCARDED)
        assert {"dog", "bicycle"} <= {d.label for d in result.detections}
    first = Counter(t.server for t in results[0].tiles)
    assert first[slow], first  # equal hints: it gets its share before anything is measured
    later = Counter(t.server for r in results[1:] for t in r.tiles)
    assert later[slow] * 10 <= sum(later.values()), later
    assert learned[slow] > 4 * max(learned[f] for f in fast), learned


@pytest.mark.slow
@needs_testbed
def test_thirty_percent_packet_loss_on_one_link_loses_no_frame_and_never_sends_a_privatized_tile_raw(bed):
    import shutil

    if shutil.which("nft") is None:
        pytest.skip("packet loss needs nftables: apt-get install -y nftables")
    canvas = astronaut()  # a face moving through the frame: privatized tiles as well as raw ones
    frames = [np.ascontiguousarray(canvas[3 * i : 3 * i + 448, 4 * i : 4 * i + 448]) for i in range(10)]
    options = {"tile": 160, "obfuscator": "channel-mask", "sensitive": ("faces",), "learn_capacities": False}
    with Pipeline(PipelineConfig(servers=2, **options)) as local:
        want = [local(frame) for frame in frames]

    clean = testbed.ServerSpec("100mbit", threads=1)
    up = bed(_config(testbed.ServerSpec("100mbit", loss=30.0, threads=1), clean, clean))
    lossy = up.addresses[0]
    assert testbed.status()[0].shape.loss == 30.0
    # A short deadline: a request stuck behind TCP's retransmission back-off is given up and sent elsewhere.
    pool = RecordingPool(create_pool("threads", up.addresses, remote=RemoteOptions(deadline_s=5)))
    results, sent_per_frame = [], []
    started = time.monotonic()
    with Pipeline(PipelineConfig(servers=up.addresses, **options), pool=pool) as remote:
        for frame in frames:
            before = len(pool.sent)
            results.append(remote(frame))
            sent_per_frame.append(pool.sent[before:])
    elapsed = time.monotonic() - started

    # Every frame, in order, each with the detections and tile treatments it gets without loss.
    assert [r.frame for r in results] == list(range(len(frames)))
    for got, expected in zip(results, want, strict=True):
        assert _same_detections(got.detections, expected.detections)
        assert [(t.box, t.treatment) for t in got.tiles] == [(t.box, t.treatment) for t in expected.tiles]
        assert all(t.server is not None for t in got.tiles if t.treatment != Treatment.DISCARDED)
    assert any(t.treatment == Treatment.PRIVATIZED for r in results for t in r.tiles)
    # The lossy link was in play: it was given work, or its handshake took longer than the start-up
    # check's 5 s and the pool started without it (then probed it after its back-off).
    assert any(server == lossy for server, _ in pool.sent) or pool.unready() == [lossy]

    # Whatever the lossy link did (answered late, or timed out so the tiles were sent again elsewhere),
    # every copy of a tile is the same kind and bytes, and a privatized tile only left as an embedding.
    _check_every_copy(results, sent_per_frame)
    served = Counter(t.server for r in results for t in r.tiles if t.server is not None)
    tried = Counter(server for server, _ in pool.sent)
    print(
        f"{len(frames)} frames with a 30 % lossy link in {elapsed:.1f} s; tiles sent per server {dict(tried)}, "
        f"answered per server {dict(served)}, unready at the start {pool.unready()}, probes {pool.probes}"
    )


def test_cpu_budgets_are_read_from_lists_and_tables_and_checked(tmp_path):
    config = testbed.load_config(cpu=[0.5, 0.25, 0.125, 0.125])
    assert [s.cpu for s in config.servers] == [0.5, 0.25, 0.125, 0.125]
    toml = tmp_path / "bed.toml"
    toml.write_text("[[servers]]\ncpu = 0.25\n[[servers]]\n")
    assert [s.cpu for s in testbed.load_config(toml).servers] == [0.25, None]
    for bad in (0, -1, 1000):
        with pytest.raises(ConfigError, match=f"cpu {bad} must be a budget in cores"):
            testbed.load_config(cpu=[bad])


def test_a_budgeted_server_joins_its_cgroup_before_it_runs(tmp_path):
    link = network.plan_links("10.77.0.0/24", 2)[1]
    command = processes.server_command(link, testbed.ServerSpec(cpu=0.25, cpus="1"), testbed.TestbedConfig())
    procs = str(cpu_budget.group_path(1) / "cgroup.procs")
    assert command[:4] == ["sh", "-c", 'echo $$ > "$0" && exec "$@"', procs]
    assert command[4:11] == ["ip", "netns", "exec", "privinfer-tb1", "taskset", "-c", "1"]
    unbudgeted = processes.server_command(link, testbed.ServerSpec(), testbed.TestbedConfig())
    assert unbudgeted[0] == "ip"
    assert (cpu_budget.quota_us(0.25), cpu_budget.period_us(0.25)) == (2_500, 10_000)
    assert (cpu_budget.quota_us(0.05), cpu_budget.period_us(0.05)) == (1_000, 20_000)  # the kernel's least quota


def test_the_budget_is_written_to_the_kernels_cgroup_and_removed():
    reason = cpu_budget.unavailable()
    if reason:
        pytest.skip(reason)
    index = 63  # a server index no testbed of this suite uses
    try:
        path = cpu_budget.create(index, 0.25)
        assert int((path / "cpu.cfs_quota_us").read_text()) == 2_500
        assert int((path / "cpu.cfs_period_us").read_text()) == 10_000
        assert cpu_budget.read(index) == 0.25
        # A process started inside it is counted there, with the quota over it.
        child = subprocess.run(
            cpu_budget.wrap(["cat", "/proc/self/cgroup"], index), capture_output=True, text=True, check=True
        )
        assert f"{cpu_budget.GROUP}/server-{index}" in child.stdout
    finally:
        cpu_budget.remove(index)
    assert cpu_budget.read(index) is None
