"""Fuzzing the two places where untrusted bytes enter privinfer: image decoding and the gRPC server.

Targets (each runs ``--cases`` generated cases; hypothesis, generate phase only, so every case
is counted and none is shrunk away):

- ``image``: `read_image` on mutated bytes of real JPEG / PNG / BMP / WebP / TIFF / GIF files
  (bit flips, truncations, overwrites, insertions, deletions, splices of two files, header splices,
  rewritten width / height fields, random bytes behind a real magic number, pure random bytes).
  Allowed: `ImageReadError`, or an RGB uint8 array of at least 1x1 within the pixel limit.
- ``infer``: `InferenceService.ModelInfer` called in-process with generated `ModelInferRequest`s
  (random and near-valid model names, versions, tensor names, datatypes, shapes, raw contents
  lengths, typed contents, parameters, requested outputs; also mutated wire bytes of a good
  request). Allowed: an abort with INVALID_ARGUMENT, NOT_FOUND or RESOURCE_EXHAUSTED (INTERNAL
  means our validation let through something the model could not run), or a well-formed answer.
- ``metadata``: `ModelMetadata` / `ModelReady` with random names and versions. Allowed: an answer,
  or NOT_FOUND.

Anything else (another exception type, a malformed answer) is a crash; after each target the
server must still answer a good request exactly as the model does. A native crash (segfault)
ends the process: faulthandler prints where, and the image target's last input is left on disk.

    .venv/bin/python scripts/fuzz.py [--cases 10000] [--targets image,infer,metadata] [--seed 0]

Prints per target: cases, crashes, outcome counts, seconds; exit status 1 if anything crashed.
tests/test_fuzz.py runs the same targets with a few hundred cases.
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import io
import math
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import cv2
import grpc
import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from PIL import Image as PILImage
from skimage.data import astronaut, chelsea
from tritonclient.grpc import service_pb2 as pb

from privinfer import assets
from privinfer.errors import ImageReadError
from privinfer.images import DEFAULT_MAX_PIXELS, read_image
from privinfer.models.served_decode import DETECTION_WIDTH
from privinfer.serve.grpc_server import InferenceService
from privinfer.serve.protocol import INPUT_NAMES, OUTPUT_NAME, RequestLimits, infer_request
from privinfer.serve.worker import TileServer

# The fuzzed server's limits: small, so that the valid requests it runs stay cheap on a CPU.
LIMITS = RequestLimits(max_batch=4, max_side=256)
REFUSALS = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.RESOURCE_EXHAUSTED}
MAX_CONTENT = 2**20  # generated raw contents stay under 1 MiB
TARGETS = ("image", "infer", "metadata")


# ---------------------------------------------------------------- tallies


@dataclass
class Tally:
    """What one target saw: outcome counts and the crashes (first few kept in full)."""

    target: str
    cases: int = 0
    outcomes: Counter = field(default_factory=Counter)
    crashes: list[str] = field(default_factory=list)

    def record(self, check: Callable[[], str], describe: Callable[[], str]) -> None:
        self.cases += 1
        try:
            self.outcomes[check()] += 1
        except Exception as error:  # the point of fuzzing: anything escaping the check is a finding
            self.crashes.append(f"{type(error).__name__}: {error} <- {describe()}"[:2000])

    def summary(self, seconds: float) -> str:
        outcomes = ", ".join(f"{count} {name}" for name, count in self.outcomes.most_common())
        return f"{self.target}: {self.cases} cases, {len(self.crashes)} crashes in {seconds:.1f} s ({outcomes})"


def run_target(strategy: st.SearchStrategy, step: Callable, tally: Tally, cases: int, seed: int) -> Tally:
    """Feed ``cases`` examples of ``strategy`` to ``step(example, tally)``."""

    @hypothesis_seed(seed)
    @settings(
        max_examples=cases,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def case(example):
        step(example, tally)

    case()
    return tally


# ---------------------------------------------------------------- image decoding


@cache
def image_seeds() -> tuple[tuple[str, bytes], ...]:
    """Real photos in the formats read_image meets: the dog photo as shipped, and small re-encodings."""
    photo, cat = astronaut()[100:196, 150:278], chelsea()[:72, :96]
    seeds = [("dog.jpg", assets.require("dog.jpg").read_bytes())]

    def pil(array: np.ndarray, fmt: str, **options) -> bytes:
        buffer = io.BytesIO()
        PILImage.fromarray(array).save(buffer, fmt, **options)
        return buffer.getvalue()

    def ocv(array: np.ndarray, suffix: str) -> bytes:
        ok, encoded = cv2.imencode(suffix, array)
        assert ok, suffix
        return encoded.tobytes()

    seeds += [
        ("baseline.jpg", pil(photo, "JPEG", quality=85)),
        ("progressive.jpg", pil(cat, "JPEG", progressive=True, quality=70)),
        ("exif.jpg", pil(photo, "JPEG", exif=_exif(orientation=6, make="privinfer"))),
        ("rgb.png", ocv(photo[:, :, ::-1], ".png")),
        ("gray16.png", ocv(photo[:, :, 0].astype(np.uint16) * 257, ".png")),
        ("rgba.png", pil(np.dstack([cat, cat[:, :, :1]]), "PNG")),
        ("palette.png", pil(np.asarray(PILImage.fromarray(cat).convert("P")), "PNG")),
        ("photo.bmp", ocv(cat, ".bmp")),
        ("photo.webp", ocv(cat, ".webp")),
        ("photo.tiff", ocv(cat, ".tiff")),
        ("photo.gif", pil(cat, "GIF")),
    ]
    return tuple(seeds)


def _exif(orientation: int, make: str) -> bytes:
    exif = PILImage.Exif()
    exif[0x0112], exif[0x010F] = orientation, make
    return exif.tobytes()


def _positions() -> st.SearchStrategy[int]:
    # Headers are where parsers branch: half the positions fall in the first 256 bytes.
    return st.one_of(st.integers(0, 255), st.integers(0, 2**24))


def _mutations() -> st.SearchStrategy[tuple]:
    count = len(image_seeds())
    small = st.binary(min_size=1, max_size=16)
    return st.one_of(
        st.tuples(st.just("flip"), _positions(), st.integers(0, 7)),
        st.tuples(st.just("truncate"), _positions()),
        st.tuples(st.just("overwrite"), _positions(), small),
        st.tuples(st.just("insert"), _positions(), small),
        st.tuples(st.just("delete"), _positions(), st.integers(1, 64)),
        st.tuples(st.just("splice"), st.integers(0, count - 1), _positions(), _positions()),
        st.tuples(st.just("header"), st.integers(0, count - 1), st.integers(1, 64)),
        st.tuples(st.just("size"), st.sampled_from(["width", "height"]), st.integers(0, 2**32 - 1)),
    )


def image_cases() -> st.SearchStrategy[tuple]:
    """(seed index, mutations) or ("random", bytes) or ("magic", seed index, bytes)."""
    count = len(image_seeds())
    mutated = st.tuples(st.just("mutate"), st.integers(0, count - 1), st.lists(_mutations(), min_size=1, max_size=4))
    return st.one_of(
        mutated,
        mutated,
        mutated,  # three in five cases: mutations of real files reach deepest into the decoders
        st.tuples(st.just("magic"), st.integers(0, count - 1), st.binary(max_size=512)),
        st.tuples(st.just("random"), st.binary(max_size=1024)),
    )


def image_bytes(case: tuple) -> bytes:
    """The bytes a generated case stands for."""
    seeds = image_seeds()
    if case[0] == "random":
        return case[1]
    if case[0] == "magic":  # a real file's first bytes, then noise: gets past every format sniffer
        return seeds[case[1]][1][:16] + case[2]
    data = bytearray(seeds[case[1]][1])
    for mutation in case[2]:
        data = _mutate(data, mutation, seeds)
    return bytes(data)


def _mutate(data: bytearray, mutation: tuple, seeds) -> bytearray:
    kind, *args = mutation
    at = args[0] % (len(data) + 1) if kind not in ("splice", "header", "size") else 0
    if kind == "flip" and data:
        data[at % len(data)] ^= 1 << args[1]
    elif kind == "truncate":
        del data[at:]
    elif kind == "overwrite":
        data[at : at + len(args[1])] = args[1]
    elif kind == "insert":
        data[at:at] = args[1]
    elif kind == "delete":
        del data[at : at + args[1]]
    elif kind == "splice":
        other = seeds[args[0]][1]
        data = data[: args[1] % (len(data) + 1)] + bytearray(other[args[2] % len(other) :])
    elif kind == "header":
        data = bytearray(seeds[args[0]][1][: args[1]]) + data[args[1] :]
    elif kind == "size":
        _rewrite_size(data, args[0], args[1])
    return data


def _rewrite_size(data: bytearray, which: str, value: int) -> None:
    """Rewrite the width or height field of a PNG (IHDR) or JPEG (first SOFn) header in place."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        offset = 16 if which == "width" else 20
        data[offset : offset + 4] = value.to_bytes(4, "big")
        return
    for index in range(2, len(data) - 9):
        if data[index] == 0xFF and data[index + 1] in (0xC0, 0xC1, 0xC2):
            offset = index + (7 if which == "width" else 5)
            data[offset : offset + 2] = (value & 0xFFFF).to_bytes(2, "big")
            return


def image_step(folder: Path, max_pixels: int) -> Callable[[tuple, Tally], None]:
    path = folder / "case.img"  # left on disk: after a native crash it holds the input that did it

    def step(case: tuple, tally: Tally) -> None:
        data = image_bytes(case)
        path.write_bytes(data)
        tally.record(lambda: _check_image(path, max_pixels), lambda: f"{case!r:.300} ({len(data)} bytes)")

    return step


def _check_image(path: Path, max_pixels: int) -> str:
    try:
        image = read_image(path, max_pixels)
    except ImageReadError:
        return "refused"
    pixels = image.pixels
    valid = (
        isinstance(pixels, np.ndarray)
        and pixels.dtype == np.uint8
        and pixels.ndim == 3
        and pixels.shape[2] == 3
        and pixels.shape[0] >= 1
        and pixels.shape[1] >= 1
        and pixels.shape[0] * pixels.shape[1] <= max_pixels
        and pixels.flags.c_contiguous
    )
    if not valid:
        raise AssertionError(f"read_image returned {pixels.dtype} {pixels.shape}, not RGB uint8")
    return "decoded"


# ---------------------------------------------------------------- the gRPC server's request handling


class Aborted(Exception):
    """What `FakeContext.abort` raises, as grpc's own ``abort`` raises to end the handler."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code


class FakeContext:
    """The part of ``grpc.ServicerContext`` the handlers use."""

    def abort(self, code: grpc.StatusCode, details: str):
        raise Aborted(code, details)

    def invocation_metadata(self):
        return ()


def fuzzed_service(threads: int | None = None) -> InferenceService:
    """An in-process servicer over the real torch model, with the small fuzzing limits.
    ``threads`` sets torch's intra-op threads for the whole process (None: leave them)."""
    return InferenceService(TileServer(runtime="torch", threads=threads), LIMITS)


def good_request() -> tuple[pb.ModelInferRequest, np.ndarray]:
    batch = np.random.default_rng(7).standard_normal((2, 128, 4, 4)).astype(np.float16)
    return infer_request("tail", {"embedding": batch}), batch


def check_good_request(service: InferenceService) -> None:
    """The servicer answers a good request exactly as its model does."""
    request, batch = good_request()
    answer = service.ModelInfer(request, FakeContext())
    got = np.frombuffer(answer.raw_output_contents[0], "<f4").reshape(tuple(answer.outputs[0].shape))
    if not np.array_equal(got, service.server.run("tail", {"embedding": batch.astype(np.float16)})):
        raise AssertionError("the servicer's answer to a good request differs from the model's")


_DATATYPES = ["FP16", "FP32", "UINT8", "INT8", "INT32", "INT64", "FP64", "BF16", "BOOL", "BYTES", "", "fp16"]
_ITEMSIZE = {"FP16": 2, "FP32": 4, "UINT8": 1}


def _dims() -> st.SearchStrategy[int]:
    return st.one_of(
        st.integers(-2, 8),
        st.sampled_from([16, 32, 64, 128, 3, 4]),
        st.integers(1, 8).map(lambda k: 32 * k),
        st.integers(-(2**63), 2**63 - 1),
    )


@st.composite
def _tensor_plan(draw) -> dict:
    """Model, input name, datatype and shape: each right most of the time, so that many requests
    get deep into validation (and a few all the way to the model), the rest anything at all."""

    def mostly(right: st.SearchStrategy, anything: st.SearchStrategy) -> st.SearchStrategy:
        return right if draw(st.integers(0, 4)) else anything

    model = draw(mostly(st.sampled_from(["tail", "full"]), st.text(max_size=12)))
    valid_model = model if model in INPUT_NAMES else "tail"
    name = draw(mostly(st.just(INPUT_NAMES[valid_model]), st.sampled_from(["pixels", "embedding", "raw", ""])))
    right_types = ["FP16", "FP32"] if valid_model == "tail" else ["UINT8"]
    datatype = draw(mostly(st.sampled_from(right_types), st.sampled_from(_DATATYPES) | st.text(max_size=6)))
    if draw(st.integers(0, 2)):  # near-valid: the model's own layout with small (maybe unequal) sides
        unit = 4 if valid_model == "tail" else 32  # the spatial multiple: 32 pixels
        height, width = (draw(st.integers(1, 4)) * unit for _ in range(2))
        batch = draw(st.integers(1, 3) | st.integers(0, 6))
        shape = [batch, 128, height, width] if valid_model == "tail" else [batch, height, width, 3]
        if draw(st.integers(0, 3)) == 0:
            shape[draw(st.integers(0, 3))] = draw(_dims())
    else:
        shape = draw(st.lists(_dims(), max_size=6))
    return {"model": model, "name": name, "datatype": datatype, "shape": shape}


def _contents(plan: dict) -> st.SearchStrategy[list[bytes]]:
    """Raw contents for a planned tensor: mostly exactly the bytes its shape needs, or nearly."""
    size = _ITEMSIZE.get(plan["datatype"], 4) * math.prod(max(d, 0) for d in plan["shape"])
    lengths = [st.integers(0, 4096)]
    if size <= MAX_CONTENT:
        lengths += [st.just(size), st.just(size), st.integers(max(0, size - 3), size + 3)]
    buffer = st.one_of(*lengths).map(
        lambda n: np.random.default_rng(n).standard_normal((n + 3) // 4).astype("<f4").tobytes()[:n]
    )
    return st.one_of(st.lists(buffer, min_size=1, max_size=1), st.lists(buffer, max_size=2))


def _parameters() -> st.SearchStrategy[dict]:
    value = st.one_of(
        st.tuples(st.just("bool_param"), st.booleans()),
        st.tuples(st.just("int64_param"), st.integers(-(2**63), 2**63 - 1)),
        st.tuples(st.just("string_param"), st.text(max_size=20)),
        st.tuples(st.just("double_param"), st.floats(allow_nan=True)),
    )
    return st.dictionaries(st.text(max_size=10), value, max_size=3)


def _fill_parameters(target, parameters: dict) -> None:
    for key, (kind, value) in parameters.items():
        setattr(target[key], kind, value)


@st.composite
def infer_requests(draw) -> pb.ModelInferRequest:
    """A generated request: built field by field, or a good request's wire bytes mutated."""
    if draw(st.integers(0, 5)) == 0:
        wire = bytearray(good_request()[0].SerializeToString())
        for _ in range(draw(st.integers(1, 4))):
            at = draw(st.integers(0, len(wire) - 1))
            wire[at] = draw(st.integers(0, 255))
        if draw(st.booleans()):
            del wire[draw(st.integers(0, len(wire))) :]
        try:
            return pb.ModelInferRequest.FromString(bytes(wire))
        except Exception:  # not parseable: gRPC would refuse it before any handler; build one instead
            pass
    plan = draw(_tensor_plan())
    request = pb.ModelInferRequest(
        model_name=plan["model"],
        model_version=draw(st.sampled_from(["", "1"]) if draw(st.integers(0, 4)) else st.text(max_size=4)),
        id=draw(st.text(max_size=8)),
    )
    _fill_parameters(request.parameters, draw(_parameters()))
    for _ in range(draw(st.sampled_from([1, 1, 1, 0, 2]))):
        tensor = request.inputs.add(name=plan["name"], datatype=plan["datatype"], shape=plan["shape"])
        _fill_parameters(tensor.parameters, draw(_parameters()))
        if draw(st.integers(0, 5)) == 0:
            tensor.contents.fp32_contents.extend(draw(st.lists(st.floats(width=32), max_size=8)))
    for name in draw(st.lists(st.sampled_from([OUTPUT_NAME, OUTPUT_NAME, "boxes", ""]), max_size=2)):
        request.outputs.add(name=name)
    request.raw_input_contents.extend(draw(_contents(plan)))
    return request


def infer_step(service: InferenceService) -> Callable[[pb.ModelInferRequest, Tally], None]:
    def step(case: pb.ModelInferRequest, tally: Tally) -> None:
        tally.record(lambda: _check_infer(service, case), lambda: f"{case}"[:600])

    return step


def _check_infer(service: InferenceService, request: pb.ModelInferRequest) -> str:
    try:
        response = service.ModelInfer(request, FakeContext())
    except Aborted as aborted:
        if aborted.code not in REFUSALS:
            raise
        return f"refused {aborted.code.name}"
    batch = int(request.inputs[0].shape[0])
    shape = tuple(response.outputs[0].shape)
    if (
        response.model_name != request.model_name
        or response.id != request.id
        or len(shape) != 3
        or shape[0] != batch
        or shape[2] != DETECTION_WIDTH
        or len(response.raw_output_contents[0]) != 4 * math.prod(shape)
    ):
        raise AssertionError(f"malformed answer: {response.model_name} {shape} for a batch of {batch}")
    return "answered"


def metadata_cases() -> st.SearchStrategy[tuple[str, str, str]]:
    """(call, model name, version): a served name and version half of the time each."""
    served = st.sampled_from(["tail", "full"])
    names = st.one_of(served, st.sampled_from(["yolo", "", "TAIL", " tail", "tail\x00"]) | st.text(max_size=16))
    versions = st.one_of(st.sampled_from(["", "1"]), st.sampled_from(["0", "01", "1 ", "2"]) | st.text(max_size=4))
    return st.tuples(st.sampled_from(["metadata", "ready"]), names, versions)


def metadata_step(service: InferenceService) -> Callable[[tuple[str, str, str], Tally], None]:
    def step(case: tuple[str, str, str], tally: Tally) -> None:
        tally.record(lambda: _check_metadata(service, *case), lambda: repr(case))

    return step


def _check_metadata(service: InferenceService, call: str, name: str, version: str) -> str:
    if call == "ready":
        ready = service.ModelReady(pb.ModelReadyRequest(name=name, version=version), FakeContext()).ready
        if ready != (name in service.models and version in ("", "1")):
            raise AssertionError(f"ModelReady({name!r}, {version!r}) answered {ready}")
        return f"ready {ready}"
    try:
        answer = service.ModelMetadata(pb.ModelMetadataRequest(name=name, version=version), FakeContext())
    except Aborted as aborted:
        if aborted.code != grpc.StatusCode.NOT_FOUND:
            raise
        return "metadata NOT_FOUND"
    if answer.name != name or not answer.inputs or answer.outputs[0].name != OUTPUT_NAME:
        raise AssertionError(f"malformed metadata for {name!r}: {answer}")
    return "metadata answered"


# ---------------------------------------------------------------- running


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """libjpeg and libpng print every warning on stderr (fd 2): silence them while fuzzing."""
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def fuzz(
    target: str,
    cases: int,
    seed: int,
    folder: Path,
    service: InferenceService | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Tally:
    """Run one target; returns its tally. The gRPC targets use ``service`` (built when None) and
    check afterwards that it still answers a good request exactly."""
    tally = Tally(target)
    if target == "image":
        return run_target(image_cases(), image_step(folder, max_pixels), tally, cases, seed)
    service = service or fuzzed_service()
    if target == "infer":
        run_target(infer_requests(), infer_step(service), tally, cases, seed)
    elif target == "metadata":
        run_target(metadata_cases(), metadata_step(service), tally, cases, seed)
    else:
        raise ValueError(f"unknown target '{target}'; choose from: {', '.join(TARGETS)}")
    tally.record(lambda: _still_serving(service), lambda: "the good request after the fuzzing")
    tally.cases -= 1  # that check is not a generated case
    return tally


def _still_serving(service: InferenceService) -> str:
    check_good_request(service)
    return "good request answered after"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=10_000, help="generated cases per target")
    parser.add_argument("--targets", type=lambda t: t.split(","), default=TARGETS, help="comma-separated targets")
    parser.add_argument("--seed", type=int, default=0, help="hypothesis seed (same seed, same cases)")
    args = parser.parse_args()
    unknown = set(args.targets) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets {sorted(unknown)}; choose from: {', '.join(TARGETS)}")
    # Native crashes are reported on the real stderr, which the decoders' chatter no longer reaches.
    faulthandler.enable(file=os.fdopen(os.dup(2), "w"))
    service = fuzzed_service(threads=1) if {"infer", "metadata"} & set(args.targets) else None
    crashed = False
    with tempfile.TemporaryDirectory(prefix="privinfer-fuzz-") as folder:
        for target in args.targets:
            started = time.perf_counter()
            with quiet_native_stderr():
                tally = fuzz(target, args.cases, args.seed, Path(folder), service)
            print(tally.summary(time.perf_counter() - started), flush=True)
            for crash in tally.crashes[:5]:
                print(f"  crash: {crash}", flush=True)
            crashed |= bool(tally.crashes)
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
