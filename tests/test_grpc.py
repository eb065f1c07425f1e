"""Servers over the network: the gRPC server and client on loopback, against the local backend.

Servers run in this process (port 0: the system picks a free port), except one started with
`privinfer serve` in a subprocess so that it can be killed mid-run.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import grpc
import numpy as np
import pytest
from skimage.data import astronaut
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc

from matching import assert_same_detections
from privinfer.cli import main
from privinfer.errors import ConfigError, ServerBusyCallError, ServerCallError
from privinfer.pipeline import Pipeline, PipelineConfig
from privinfer.ports import free_loopback_ports
from privinfer.serve import Payload, RemoteOptions, WorkBatch, create_pool
from privinfer.serve.grpc_client import GrpcPool, parse_address
from privinfer.serve.grpc_server import ServeConfig, start_server
from privinfer.serve.protocol import COMPUTE_MS, RequestLimits, infer_request
from privinfer.serve.recording import RecordingPool
from privinfer.serve.runtime import RUNTIME_TOLERANCE, EmbeddingGeometry
from privinfer.serve.worker import TileServer
from privinfer.types import Treatment

TOKEN = "s3cret-token"
# Blind discovery and fixed capacities: even a still photo is split over both servers, the same way
# whatever this machine measured, so each server gets a chunk.
FAST = {"obfuscator": "channel-mask", "sensitive": ("faces",), "discovery": "blind", "learn_capacities": False}


@pytest.fixture(scope="module")
def torch_server():
    """The eager torch runtime: bit-for-bit the local thread backend's model."""
    running = start_server(ServeConfig(port=0, runtime="torch"))
    yield running
    running.stop(0)


@pytest.fixture(scope="module")
def onnx_server():
    running = start_server(ServeConfig(port=0, runtime="onnxruntime"))
    yield running
    running.stop(0)


@pytest.fixture(scope="module")
def token_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("auth") / "token"
    path.write_text(TOKEN + "\n")
    return path


@pytest.fixture(scope="module")
def strict_server(torch_server, token_file):
    """Token required, small limits; shares the torch server's model."""
    config = ServeConfig(
        port=0, token_file=token_file, max_message_bytes=2**20, limits=RequestLimits(max_batch=4, max_side=512)
    )
    running = start_server(config, tile_server=torch_server.service.server)
    yield running
    running.stop(0)


@pytest.fixture(scope="module")
def local_results(dog_rgb):
    with Pipeline(PipelineConfig(servers=2, **FAST)) as pipeline:
        return [pipeline(astronaut()), _fresh(pipeline)(dog_rgb)]


def _fresh(pipeline: Pipeline) -> Pipeline:
    pipeline.reset()
    return pipeline


def _assert_same_detections(got, want, box_tol: float = 1e-2, score_tol: float = 1e-3) -> None:
    assert_same_detections(got, want, box_tol=box_tol, score_tol=score_tol)


# ---------------------------------------------------------------- the pipeline over gRPC


def test_pipeline_over_grpc_equals_the_local_thread_backend(torch_server, onnx_server, local_results, dog_rgb):
    addresses = (torch_server.address, onnx_server.address)
    with Pipeline(PipelineConfig(servers=addresses, **FAST)) as pipeline:
        remote = [pipeline(astronaut()), _fresh(pipeline)(dog_rgb)]
    for got, want in zip(remote, local_results, strict=True):
        # The onnxruntime server differs from torch by < RUNTIME_TOLERANCE in raw outputs.
        _assert_same_detections(got.detections, want.detections)
        assert [(t.box, t.treatment, t.bytes) for t in got.tiles] == [(t.box, t.treatment, t.bytes) for t in want.tiles]
        assert {t.server for t in got.tiles if t.treatment != Treatment.DISCARDED} <= set(addresses)
    faces, dog = remote
    assert faces.sensitive and Treatment.PRIVATIZED in {t.treatment for t in faces.tiles}
    assert {"dog", "bicycle"} <= {d.label for d in dog.detections}


def test_torch_server_answers_bit_for_bit_like_the_local_model(torch_server, dog_rgb):
    local = TileServer()
    rng = np.random.default_rng(0)
    embedding = rng.standard_normal((2, 128, 32, 32)).astype(np.float16)
    pixels = np.stack([dog_rgb[:256, :256], dog_rgb[100:356, 200:456]])
    patched = {
        "pixels": dog_rgb[None, :200, :300],
        "patch_cells": np.array([[0, 5, 77, 200]], np.int32),
        "patch_channels": np.array([[1, 7, 64]], np.int32),
        "patch_values": rng.standard_normal((1, 4, 3)).astype(np.float16),
    }
    with GrpcPool([torch_server.address]) as pool:
        repaired = {"pixels": dog_rgb[None, :200, :300], "region_cells": np.array([[0, 5, 77, 200]], np.int32)}
        served = (("tail", {"embedding": embedding}), ("full", {"pixels": pixels}), ("patched", patched),
                  ("repaired", repaired))  # fmt: skip
        for model, inputs in served:
            answer = pool.infer(torch_server.address, model, inputs).result(timeout=30)
            assert np.array_equal(answer.detections, local.run(model, inputs))
            assert answer.compute_ms is not None and answer.compute_ms > 0


def test_onnx_server_agrees_with_torch_within_tolerance(torch_server, onnx_server, dog_rgb):
    pixels = np.stack([dog_rgb[:256, :256]])
    with GrpcPool([torch_server.address, onnx_server.address]) as pool:
        batch = WorkBatch("full", (Payload(0, "pixels", pixels[0]),))
        reference, onnx = (pool.submit(batch, s.address).result(timeout=30) for s in (torch_server, onnx_server))
    assert float(np.abs(reference - onnx).max()) < RUNTIME_TOLERANCE


def test_a_killed_server_has_its_tiles_reassigned_and_the_frame_completes(torch_server, local_results, dog_rgb):
    port = free_loopback_ports()[0]
    server = subprocess.Popen(
        [sys.executable, "-m", "privinfer.cli", "serve", "--port", str(port), "--threads", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    doomed = f"127.0.0.1:{port}"
    try:
        options = RemoteOptions(connect_timeout_s=120)
        pool = RecordingPool(create_pool("threads", [doomed, torch_server.address], remote=options))
        with Pipeline(PipelineConfig(servers=(doomed, torch_server.address), **FAST), pool=pool) as pipeline:
            server.send_signal(signal.SIGKILL)
            server.wait(timeout=30)
            result = _fresh(pipeline)(dog_rgb)
    finally:
        server.kill()
        output = server.communicate(timeout=30)[0]
    assert f"serving full, patched, repaired, tail on {doomed}" in output
    assert any(where == doomed for where, _ in pool.sent), "the killed server was given tiles"
    assert {t.server for t in result.tiles} == {torch_server.address}
    _assert_same_detections(result.detections, local_results[1].detections)


def test_run_cli_over_remote_servers(torch_server, strict_server, token_file, tmp_path, dog_rgb):
    from privinfer import assets

    results = tmp_path / "results.json"
    servers = f"{strict_server.address},{torch_server.address}"
    args = ["run", str(assets.require("dog.jpg")), "--servers", servers, "--token-file", str(token_file)]
    assert main([*args, "--sensitive", "faces", "--json", str(results)]) == 0
    record = json.loads(results.read_text())[0]
    assert {"dog", "bicycle"} <= {d["label"] for d in record["detections"]}
    assert {t["server"] for t in record["tiles"]} <= {strict_server.address, torch_server.address}


def test_bad_server_lists_are_config_errors(capsys):
    from privinfer import assets

    with pytest.raises(ConfigError, match="not host:port"):
        parse_address("edge-1")
    with pytest.raises(ConfigError, match="2 positive capacities"):
        GrpcPool(["127.0.0.1:1", "127.0.0.1:2"], [1.0], check=False)
    dog = str(assets.require("dog.jpg"))
    assert main(["run", dog, "--servers", "edge-1:99999", "--sensitive", ""]) == 2
    assert "server address 'edge-1:99999' is not host:port" in capsys.readouterr().err
    assert main(["run", dog, "--servers", "127.0.0.1:1", "--deadline", "0"]) == 2
    assert "server deadline" in capsys.readouterr().err


def test_a_restarted_server_answers_its_probe_and_is_called_again(torch_server, dog_rgb):
    batch = WorkBatch("full", (Payload(0, "pixels", dog_rgb[:256, :256]),))
    first = start_server(ServeConfig(port=0), tile_server=torch_server.service.server)  # a port nobody holds
    address = first.address
    config = ServeConfig(port=int(address.rsplit(":", 1)[1]))
    with GrpcPool([address], options=RemoteOptions(probe_timeout_s=1.0)) as pool:
        assert pool.probe(address)
        want = pool.submit(batch, address).result(timeout=30)
        first.stop(0)
        with pytest.raises(ServerCallError, match=address):
            pool.submit(batch, address).result(timeout=30)
        assert not pool.probe(address)  # refused, not hung: the probe's own deadline bounds it
        second = start_server(config, tile_server=torch_server.service.server)  # the same address
        try:
            assert pool.probe(address)
            assert np.array_equal(pool.submit(batch, address).result(timeout=30), want)
        finally:
            second.stop(0)


def test_the_slowdown_test_knob_makes_a_server_that_many_times_slower(torch_server, dog_rgb, monkeypatch):
    from privinfer.serve import grpc_server

    with pytest.raises(ConfigError, match="--slowdown 0.5: must be at least 1"):
        start_server(ServeConfig(port=0, slowdown=0.5), tile_server=torch_server.service.server)
    slept: list[float] = []
    real_sleep = grpc_server.time.sleep
    monkeypatch.setattr(grpc_server.time, "sleep", lambda s: (slept.append(s), real_sleep(s)))
    slowed = start_server(ServeConfig(port=0, slowdown=5), tile_server=torch_server.service.server)
    pixels = np.stack([dog_rgb[:256, :256]])
    try:
        with GrpcPool([slowed.address]) as pool:
            reported_ms = [
                pool.infer(slowed.address, "full", {"pixels": pixels}).result(30).compute_ms for _ in range(2)
            ]
    finally:
        slowed.stop(0)
    # Compared with its own compute, not with another server's clock: each call sleeps 4 times what it
    # computed, and reports both, so it reports at least 5 times its compute whatever the machine's load.
    assert len(slept) == 2 and all(s > 0 for s in slept)
    for sleep_s, ms in zip(slept, reported_ms, strict=True):
        compute_s = sleep_s / 4
        assert ms / 1e3 >= 5 * compute_s, (sleep_s, ms)


def test_a_server_that_does_not_answer_at_the_start_is_kept_out_and_the_others_serve(torch_server, dog_rgb, caplog):
    silent = f"127.0.0.1:{free_loopback_ports()[0]}"
    options = RemoteOptions(connect_timeout_s=1)
    pool = RecordingPool(create_pool("threads", [silent, torch_server.address], remote=options))
    assert pool.unready() == [silent]
    assert f"{silent}: no answer within 1 s" in caplog.text and "starting without it" in caplog.text
    with Pipeline(PipelineConfig(servers=(silent, torch_server.address), **FAST), pool=pool) as pipeline:
        assert pipeline.health.out == [silent]
        result = _fresh(pipeline)(dog_rgb)
    assert {"dog", "bicycle"} <= {d.label for d in result.detections}
    assert {server for server, _ in pool.sent} == {torch_server.address}  # nothing was sent to it


def test_an_unreachable_server_is_named(tmp_path):
    with pytest.raises(
        ServerCallError,
        match=f"127.0.0.1:{(port := free_loopback_ports()[0])}: no answer within 1 s",
    ):
        GrpcPool([f"127.0.0.1:{port}"], options=RemoteOptions(connect_timeout_s=1))


def test_privinfer_serve_refuses_a_burst_beyond_its_in_flight_limit_at_once_as_busy():
    port = free_loopback_ports()[0]
    command = [sys.executable, "-m", "privinfer.cli", "serve", "--port", str(port), "--threads", "1"]
    server = subprocess.Popen(
        [*command, "--max-in-flight", "2", "--slowdown", "20"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    address = f"127.0.0.1:{port}"
    try:
        with GrpcPool([address], options=RemoteOptions(connect_timeout_s=120)) as pool:
            burst = [pool.infer(address, "tail", {"embedding": _embeddings(1)}) for _ in range(8)]
            outcomes = [call.exception(timeout=60) for call in burst]
            refused = [error for error in outcomes if error is not None]
            assert all(isinstance(error, ServerBusyCallError) for error in refused), refused
            # Two admitted (each holds the model 20x longer than it computes), the other six refused at once.
            assert len(outcomes) - len(refused) >= 2 and len(refused) >= 5, outcomes
            assert "server busy: 2 requests in flight, its limit (--max-in-flight)" in str(refused[0])
            assert refused[0].retry_after_s == pytest.approx(0.02)
            assert pool.refusals[address] == len(refused)
            for call in burst:
                if call.exception() is None:
                    assert _answers(call.result(), 1)
            assert _answers(pool.infer(address, "tail", {"embedding": _embeddings(1)}).result(60), 1)
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert "at most 2 requests in flight" in output


def test_a_request_over_the_size_limits_is_a_failure_not_busy(strict_server, token_file):
    options = RemoteOptions(token_file=token_file)
    with GrpcPool([strict_server.address], options=options) as pool:
        error = pool.infer(strict_server.address, "tail", {"embedding": _embeddings(5)}).exception(timeout=30)
    assert isinstance(error, ServerCallError) and not isinstance(error, ServerBusyCallError)
    assert "RESOURCE_EXHAUSTED" in str(error) and pool.refusals[strict_server.address] == 0


def test_concurrent_pipelines_over_busy_servers_lose_no_frame(torch_server, local_results, dog_rgb):
    from concurrent.futures import ThreadPoolExecutor

    with pytest.raises(ConfigError, match="--max-in-flight 0: must be at least 1"):
        start_server(ServeConfig(port=0, max_in_flight=0), tile_server=torch_server.service.server)
    tight = [
        start_server(ServeConfig(port=0, max_in_flight=1, slowdown=2), tile_server=torch_server.service.server)
        for _ in range(2)
    ]
    addresses = tuple(s.address for s in tight)
    pools = [GrpcPool(addresses) for _ in range(4)]

    def stream(pool: GrpcPool) -> list:
        with Pipeline(PipelineConfig(servers=addresses, **FAST), pool=pool) as pipeline:
            return [_fresh(pipeline)(dog_rgb) for _ in range(2)]

    try:
        with ThreadPoolExecutor(len(pools)) as clients:
            streams = list(clients.map(stream, pools))
    finally:
        for server in tight:
            server.stop(0)
    refused = sum(s.service.refused for s in tight)
    assert refused > 0, "four clients on servers admitting one request each: some were refused"
    assert refused == sum(sum(p.refusals.values()) for p in pools), "every refusal reached a client as busy"
    for results in streams:
        assert len(results) == 2
        for result in results:
            _assert_same_detections(result.detections, local_results[1].detections)
            assert {t.server for t in result.tiles} <= set(addresses)


# ---------------------------------------------------------------- auth, limits, validation


def test_wrong_or_missing_token_is_unauthenticated(strict_server, token_file, tmp_path):
    wrong = tmp_path / "wrong"
    wrong.write_text("not-it")
    with pytest.raises(ServerCallError, match="UNAUTHENTICATED"):
        GrpcPool([strict_server.address], options=RemoteOptions(token_file=wrong))
    stub = _stub(strict_server)
    with pytest.raises(grpc.RpcError) as refused:
        stub.ModelInfer(_good_request(), timeout=10)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with GrpcPool([strict_server.address], options=RemoteOptions(token_file=token_file)) as pool:
        answer = pool.infer(strict_server.address, "tail", {"embedding": _embeddings(1)}).result(timeout=30)
        assert _answers(answer, 1)


def _bad_requests() -> dict[str, tuple[pb.ModelInferRequest, grpc.StatusCode, str]]:
    wrong_channels = infer_request("tail", {"embedding": np.zeros((1, 64, 4, 4), np.float16)})
    wrong_dtype = infer_request("tail", {"embedding": _embeddings(1)})
    wrong_dtype.inputs[0].datatype = "INT32"
    short = infer_request("tail", {"embedding": _embeddings(1)})
    short.raw_input_contents[0] = short.raw_input_contents[0][:-2]
    unknown = infer_request("tail", {"embedding": _embeddings(1)})
    unknown.model_name = "yolo"
    odd_side = infer_request("tail", {"embedding": np.zeros((1, 128, 5, 8), np.float16)})  # not from a padded chunk
    renamed = infer_request("tail", {"embedding": _embeddings(1)})
    renamed.inputs[0].name = "pixels"
    no_data = infer_request("tail", {"embedding": _embeddings(1)})
    del no_data.raw_input_contents[:]
    return {
        "shape": (wrong_channels, grpc.StatusCode.INVALID_ARGUMENT, r"shape \[N, 128, \?, \?\], got \[1, 64, 4, 4\]"),
        "dtype": (wrong_dtype, grpc.StatusCode.INVALID_ARGUMENT, "must be FP16 or FP32, not 'INT32'"),
        "bytes": (short, grpc.StatusCode.INVALID_ARGUMENT, "needs 65536 bytes, got 65534"),
        "model": (unknown, grpc.StatusCode.NOT_FOUND, "no model 'yolo'"),
        "side": (odd_side, grpc.StatusCode.INVALID_ARGUMENT, "multiples of 4"),
        "name": (renamed, grpc.StatusCode.INVALID_ARGUMENT, "no input 'pixels'"),
        "raw": (no_data, grpc.StatusCode.INVALID_ARGUMENT, "raw_input_contents"),
        "batch": (
            infer_request("tail", {"embedding": _embeddings(5)}),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "batch of 5 .* limit of 4",
        ),
        "tile": (
            infer_request("full", {"pixels": np.zeros((1, 1024, 32, 3), np.uint8)}),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "1024 px tile .* limit of 512",
        ),
        "cells": (
            infer_request("patched", _patched(cells=[[0, 4000]])),  # a 64x64 chunk has 64 cells
            grpc.StatusCode.INVALID_ARGUMENT,
            r"patch cells must lie in the chunk's 64 embedding cells, got 0\.\.4000",
        ),
        "region cells": (
            infer_request(
                "repaired",
                {"pixels": np.zeros((1, 64, 64, 3), np.uint8), "region_cells": np.array([[-1, 3]], np.int32)},
            ),  # fmt: skip
            grpc.StatusCode.INVALID_ARGUMENT,
            r"region cells must lie in the chunk's 64 embedding cells, got -1\.\.3",
        ),
        "patch": (
            infer_request("patched", {**_patched(cells=[[0, 1]]), "patch_values": np.zeros((1, 3, 2), np.float16)}),
            grpc.StatusCode.INVALID_ARGUMENT,
            r"2 patch cells and 2 channels need values of \[1, 2, 2\], got \[1, 3, 2\]",
        ),
        "channels": (
            infer_request("patched", {**_patched(cells=[[0, 1]]), "patch_channels": np.array([[3, 128]], np.int32)}),
            grpc.StatusCode.INVALID_ARGUMENT,
            "patch channels must be distinct channels of the 128",
        ),
        "one chunk": (
            infer_request("patched", {k: np.concatenate([v, v]) for k, v in _patched(cells=[[0, 1]]).items()}),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "batch of 2 is over this server's limit of 1",
        ),
        "message": (
            infer_request("full", {"pixels": np.zeros((1, 512, 512, 3), np.uint8)}),  # 786 kB ... then doubled below
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "larger than max",
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "shape",
        "dtype",
        "bytes",
        "model",
        "side",
        "name",
        "raw",
        "batch",
        "tile",
        "cells",
        "patch",
        "channels",
        "one chunk",
        "message",
    ],
)
def test_bad_requests_get_a_clear_status_and_the_server_keeps_serving(strict_server, case):
    request, code, message = _bad_requests()[case]
    if case == "message":
        request.raw_input_contents[0] += request.raw_input_contents[0]  # 1.5 MB > the 1 MiB limit
    stub, auth = _stub(strict_server), (("authorization", f"Bearer {TOKEN}"),)
    with pytest.raises(grpc.RpcError) as refused:
        stub.ModelInfer(request, timeout=10, metadata=auth)
    assert refused.value.code() == code
    assert re.search(message, refused.value.details() or ""), refused.value.details()
    answer = stub.ModelInfer(_good_request(), timeout=30, metadata=auth)
    shape = list(answer.outputs[0].shape)
    assert shape[0] == 2 and 1 <= shape[1] <= 300 and shape[2] == 6 and COMPUTE_MS in answer.parameters


def test_metadata_and_health(strict_server):
    stub, auth = _stub(strict_server), (("authorization", f"Bearer {TOKEN}"),)
    assert stub.ServerLive(pb.ServerLiveRequest(), metadata=auth).live
    assert stub.ServerReady(pb.ServerReadyRequest(), metadata=auth).ready
    assert stub.ServerMetadata(pb.ServerMetadataRequest(), metadata=auth).name == "privinfer"
    assert stub.ModelReady(pb.ModelReadyRequest(name="tail"), metadata=auth).ready
    assert not stub.ModelReady(pb.ModelReadyRequest(name="yolo"), metadata=auth).ready
    tail = stub.ModelMetadata(pb.ModelMetadataRequest(name="tail"), metadata=auth)
    assert (tail.inputs[0].name, tail.inputs[0].datatype, list(tail.inputs[0].shape)) == (
        "embedding",
        "FP16",
        [-1, 128, -1, -1],
    )
    full = stub.ModelMetadata(pb.ModelMetadataRequest(name="full"), metadata=auth)
    assert (full.inputs[0].name, full.inputs[0].datatype) == ("pixels", "UINT8")
    assert (full.outputs[0].name, full.outputs[0].datatype, list(full.outputs[0].shape)) == (
        "detections",
        "FP32",
        [-1, -1, 6],
    )
    with pytest.raises(grpc.RpcError) as missing:
        stub.ModelMetadata(pb.ModelMetadataRequest(name="yolo"), metadata=auth)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_server_that_misses_the_deadline_fails_the_call(torch_server):
    options = RemoteOptions(deadline_s=0.001)
    with GrpcPool([torch_server.address], options=options) as pool:
        batch = WorkBatch("tail", tuple(Payload(i, "embedding", e) for i, e in enumerate(_embeddings(4))))
        with pytest.raises(ServerCallError, match="DEADLINE_EXCEEDED"):
            pool.submit(batch, torch_server.address).result(timeout=30)


# ---------------------------------------------------------------- TLS


def test_tls_round_trip(torch_server, token_file, tmp_path):
    cert, key = _self_signed(tmp_path)
    config = ServeConfig(port=0, tls_cert=cert, tls_key=key, token_file=token_file)
    running = start_server(config, tile_server=torch_server.service.server)
    try:
        address = f"localhost:{running.port}"
        with GrpcPool([address], options=RemoteOptions(token_file=token_file, tls_ca=cert)) as pool:
            answer = pool.infer(address, "tail", {"embedding": _embeddings(2)}).result(timeout=30)
        assert _answers(answer, 2)
        with pytest.raises(ServerCallError, match=address):  # plain TCP to a TLS port
            GrpcPool([address], options=RemoteOptions(token_file=token_file, connect_timeout_s=2))
    finally:
        running.stop(0)
    with pytest.raises(ConfigError, match="both --tls-cert and --tls-key"):
        start_server(ServeConfig(port=0, tls_cert=cert), tile_server=torch_server.service.server)


# ---------------------------------------------------------------- helpers


def _embeddings(count: int) -> np.ndarray:
    return np.random.default_rng(count).standard_normal((count, 128, 16, 16)).astype(np.float16)


def _patched(cells) -> dict[str, np.ndarray]:
    """The patched model's inputs for a 64 x 64 chunk and the given patch cells (two channels sent)."""
    cells = np.asarray(cells, np.int32)
    return {
        "pixels": np.zeros((1, 64, 64, 3), np.uint8),
        "patch_cells": cells,
        "patch_channels": np.array([[0, 9]], np.int32),
        "patch_values": np.zeros((1, cells.shape[1], 2), np.float16),
    }


def _good_request() -> pb.ModelInferRequest:
    return infer_request("tail", {"embedding": _embeddings(2)})


def _stub(running) -> service_pb2_grpc.GRPCInferenceServiceStub:
    return service_pb2_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(running.address))


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost / 127.0.0.1 and its key, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "server.pem", folder / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    key_path.write_bytes(key_bytes)
    os.chmod(key_path, 0o600)
    return cert_path, key_path


def test_a_failing_model_is_internal_and_the_server_keeps_serving():
    class Flaky:
        """A TileServer whose model fails every other call."""

        runtime = SimpleNamespace(geometry=EmbeddingGeometry(128, 8), platform="test", name="test")

        def __init__(self):
            self.calls = 0

        def run(self, model, inputs):
            self.calls += 1
            if self.calls % 2:
                raise RuntimeError("out of memory (simulated)")
            return np.zeros((len(inputs["embedding"]), 336, 124), np.float32)

    running = start_server(ServeConfig(port=0), tile_server=Flaky())
    try:
        stub = _stub(running)
        with pytest.raises(grpc.RpcError) as failed:
            stub.ModelInfer(_good_request(), timeout=10)
        assert failed.value.code() == grpc.StatusCode.INTERNAL
        assert "RuntimeError: out of memory (simulated)" in failed.value.details()
        assert list(stub.ModelInfer(_good_request(), timeout=10).outputs[0].shape) == [2, 336, 124]
    finally:
        running.stop(0)


def _answers(answer, batch: int) -> bool:
    """Whether ``answer`` holds detections (N, K, 6) for a batch of ``batch``, K at most the top-k."""
    found = answer.detections
    return found.ndim == 3 and found.shape[0] == batch and 1 <= found.shape[1] <= 300 and found.shape[2] == 6
