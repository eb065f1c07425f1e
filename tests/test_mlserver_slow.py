"""privinfer's gRPC client against Seldon MLServer 1.7.1 serving the folder `privinfer export
--format mlserver` writes, unchanged (opt in: -m slow).

The first run builds MLServer's own venv from PyPI (about a minute and a half); later runs take
about twenty seconds.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from privinfer import assets

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "mlserver_interop.py"


@pytest.mark.slow
def test_pipeline_runs_unchanged_against_mlserver():
    for name in ("nanodet-graph", "nanodet-weights", "dog.jpg"):
        if not assets.verify(name):
            pytest.skip(f"asset {name} not cached; run: privinfer assets fetch {name}")
    result = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK: the pipeline over MLServer matches the local servers" in result.stdout
    assert "tiles ['privatized']" in result.stdout, "the astronaut's face tiles reached MLServer's tail"
