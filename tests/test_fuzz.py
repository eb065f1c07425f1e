"""The fuzz targets of scripts/fuzz.py, briefly: a few hundred cases each (the script runs 10,000).

Each target must see no crash, and must reach both kinds of allowed outcome (refused and
accepted), or it is not fuzzing what it claims to. Broken code must be caught: a decoder raising
a foreign exception, a model failing inside the server.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import cv2
import pytest

from privinfer.serve.grpc_server import InferenceService

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "fuzz.py"
CASES = 250


def _load_script():
    spec = importlib.util.spec_from_file_location("privinfer_fuzz_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


fuzz = _load_script()


@pytest.fixture(scope="module")
def service() -> InferenceService:
    return fuzz.fuzzed_service()  # threads None: leaves torch's process-wide setting alone


def _assert_clean(tally, *outcomes: str) -> None:
    assert not tally.crashes, "\n".join(tally.crashes[:3])
    assert tally.cases == CASES
    for outcome in outcomes:
        assert any(seen.startswith(outcome) for seen in tally.outcomes), (outcome, tally.outcomes)


def test_image_decoding_gives_an_image_or_image_read_error(tmp_path):
    _assert_clean(fuzz.fuzz("image", CASES, seed=1, folder=tmp_path), "refused", "decoded")


def test_grpc_infer_requests_get_a_status_or_an_answer_and_the_server_keeps_serving(service, tmp_path):
    tally = fuzz.fuzz("infer", CASES, seed=1, folder=tmp_path, service=service)
    _assert_clean(tally, "answered", "refused INVALID_ARGUMENT", "refused NOT_FOUND", "good request answered")


def test_grpc_metadata_requests_get_an_answer_or_not_found(service, tmp_path):
    tally = fuzz.fuzz("metadata", CASES, seed=1, folder=tmp_path, service=service)
    _assert_clean(tally, "metadata answered", "metadata NOT_FOUND", "ready True", "ready False")


def test_the_harness_catches_what_it_should(service, tmp_path, monkeypatch):
    # A decoder that raises something other than ImageReadError is a crash...
    real = cv2.imdecode

    def fragile(buffer, flags):
        if len(buffer) % 7 == 0:
            raise ValueError("decoder bug (simulated)")
        return real(buffer, flags)

    monkeypatch.setattr(cv2, "imdecode", fragile)
    assert any("ValueError: decoder bug" in crash for crash in fuzz.fuzz("image", 60, seed=2, folder=tmp_path).crashes)

    # ... and so is a model failing inside the server (INTERNAL), down to the good request after.
    class FailingServer:
        runtime = service.server.runtime

        def run(self, model, batch):
            raise RuntimeError("out of memory (simulated)")

    failing = InferenceService(FailingServer(), fuzz.LIMITS)
    crashes = fuzz.fuzz("infer", 80, seed=2, folder=tmp_path, service=failing).crashes
    assert any("INTERNAL: RuntimeError: out of memory" in crash for crash in crashes)
    assert any("the good request after" in crash for crash in crashes)
