"""Our torch NanoDet against tf2onnx + onnxruntime running the same TF.js graph (opt in: -m slow).

The first run builds a tool venv with TensorFlow (a few hundred MB from PyPI) and converts the
graph; later runs take seconds.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from privinfer import assets

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "check_nanodet_reference.py"


@pytest.mark.slow
def test_torch_nanodet_matches_onnx_reference():
    for name in ("nanodet-graph", "nanodet-weights", "dog.jpg"):
        if not assets.verify(name):
            pytest.skip(f"asset {name} not cached; run: privinfer assets fetch {name}")
    result = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK: max abs difference" in result.stdout
