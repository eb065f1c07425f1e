"""Check our torch NanoDet against an independent execution of the same TF.js graph.

The reference is TensorFlow's own converter: ``tf2onnx --tfjs`` turns the cached TF.js graph
into ONNX and onnxruntime runs it. TensorFlow, tf2onnx and onnxruntime live in a tool venv of
their own (``$PRIVINFER_CACHE/reference-venv``) because they pin things the project must not
inherit. Both sides get the same inputs (the darknet dog photo, prepared as for detection, and a
seeded random normal tensor); the six graph outputs are compared with our raw (N, 3549, 124).

    .venv/bin/python scripts/check_nanodet_reference.py [--tolerance 1e-3] [--rebuild]

Exit status: 0 when every max abs difference is below the tolerance, 1 when one is not, 2 when
the reference could not be built or run. The first run builds the venv and the ONNX file (about
a minute and a half); later runs reuse both.

This file also runs inside the tool venv (``_convert`` and ``_run-onnx`` steps), so its top level
imports only the standard library; privinfer and torch are imported where the check needs them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Versions that install and convert together on Python 3.11. tf2onnx 1.17.0 still calls
# np.product, gone in numpy 2, so the conversion step aliases it (see _convert).
TOOL_REQUIREMENTS = (
    "tensorflow-cpu==2.21.0",
    "tf2onnx==1.17.0",
    "onnxruntime==1.32.0",
    "onnx==1.23.2",
    "numpy==2.4.6",
    "protobuf==7.36.2",
)
TOOL_PYTHON = "python3.11"
TOLERANCE = 1e-3
INPUT_SIZE = 416
RANDOM_SEED = 0
NUM_CLASSES = 80
REG_WIDTH = 44  # 4 sides x 11 distance bins


class ReferenceCheckError(RuntimeError):
    """The reference venv, conversion or ONNX run failed; the message says which and how."""


# ------------------------------------------------------------------ steps run in the tool venv


def _convert(model_json: str, output: str) -> None:
    """tf2onnx --tfjs, with the numpy 2 alias tf2onnx 1.17.0 needs."""
    import runpy

    import numpy as np

    np.product = np.prod
    sys.argv = ["tf2onnx.convert", "--tfjs", model_json, "--output", output]
    runpy.run_module("tf2onnx.convert", run_name="__main__", alter_sys=True)


def _run_onnx(model: str, inputs_npz: str, outputs_npz: str) -> None:
    """Run every array of ``inputs_npz`` through the ONNX model; save outputs as '<input>/<output name>'."""
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    output_names = [o.name for o in session.get_outputs()]
    results = {}
    with np.load(inputs_npz) as inputs:
        for label in inputs.files:
            for name, value in zip(output_names, session.run(None, {input_name: inputs[label]}), strict=True):
                results[f"{label}/{name}"] = value
    np.savez(outputs_npz, **results)


_TOOL_STEPS = {"_convert": _convert, "_run-onnx": _run_onnx}


# ------------------------------------------------------------------ the tool venv and the ONNX file


def _run_tool(command: list[str], what: str) -> None:
    # TensorFlow logs pages of start-up notes; keep them unless the step fails.
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONWARNINGS="ignore")
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
        raise ReferenceCheckError(f"{what} failed (exit {result.returncode}): {' '.join(command)}\n{tail}")


def ensure_tool_venv(venv: Path) -> Path:
    """Create or update the tool venv so it holds exactly TOOL_REQUIREMENTS; returns its python.

    Raises:
        ReferenceCheckError: python3.11 is missing, or venv creation or pip install failed.
    """
    python = venv / "bin" / "python"
    stamp = venv / ".privinfer-requirements"
    wanted = "\n".join(TOOL_REQUIREMENTS)
    if python.is_file() and stamp.is_file() and stamp.read_text() == wanted:
        return python
    if not python.is_file():
        if shutil.which(TOOL_PYTHON) is None:
            raise ReferenceCheckError(
                f"'{TOOL_PYTHON}' is needed to create the reference venv {venv} but is not on PATH"
            )
        print(f"creating tool venv {venv}", flush=True)
        _run_tool([TOOL_PYTHON, "-m", "venv", str(venv)], "creating the reference venv")
    print(f"installing {' '.join(TOOL_REQUIREMENTS)} (about a minute)", flush=True)
    _run_tool([str(python), "-m", "pip", "install", "--quiet", *TOOL_REQUIREMENTS], "pip install in the reference venv")
    stamp.write_text(wanted)
    return python


def _fingerprint(files: list[Path]) -> str:
    digest = hashlib.sha256("\n".join(TOOL_REQUIREMENTS).encode())
    for path in files:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def ensure_onnx(python: Path, model_json: Path, shard: Path, output: Path, rebuild: bool = False) -> Path:
    """Convert the TF.js graph to ONNX with tf2onnx unless a conversion of the same files is cached.

    The json and its shard are cached in different folders, but tf2onnx reads the shards named in
    the manifest from the json's folder, so both are copied into one scratch folder first.

    Raises:
        ReferenceCheckError: the conversion failed.
    """
    stamp = output.with_suffix(".source")
    fingerprint = _fingerprint([model_json, shard])
    if not rebuild and output.is_file() and stamp.is_file() and stamp.read_text() == fingerprint:
        return output
    shards = [p for group in json.loads(model_json.read_text())["weightsManifest"] for p in group["paths"]]
    if shards != [shard.name]:
        raise ReferenceCheckError(f"{model_json} names shards {shards}; this check expects just '{shard.name}'")
    output.parent.mkdir(parents=True, exist_ok=True)
    print(f"converting {model_json.name} to ONNX with tf2onnx", flush=True)
    with tempfile.TemporaryDirectory(prefix="privinfer-tfjs-") as scratch:
        shutil.copy(model_json, Path(scratch) / model_json.name)
        shutil.copy(shard, Path(scratch) / shard.name)
        partial = output.with_suffix(".part.onnx")
        step = [str(python), __file__, "_convert", str(Path(scratch) / model_json.name), str(partial)]
        _run_tool(step, "tf2onnx conversion")
    partial.replace(output)
    stamp.write_text(fingerprint)
    return output


# ------------------------------------------------------------------ the comparison (project venv)


def reference_inputs() -> dict:
    """Fixed inputs, (1, 3, 416, 416) float32 each: the dog photo as detection prepares it, and noise."""
    import numpy as np

    from privinfer import assets
    from privinfer.images import read_image
    from privinfer.models.nanodet import prepare

    dog, _ = prepare(read_image(assets.require("dog.jpg")).pixels, INPUT_SIZE)
    noise = np.random.default_rng(RANDOM_SEED).standard_normal(dog.shape, dtype=np.float32)
    return {"dog": dog.numpy(), "normal": noise}


def split_outputs(outputs: dict) -> tuple[list[str], list[str]]:
    """Output names -> (class outputs, distance outputs), each ordered by stride (most anchors first).

    Mapped by shape rather than by name so a renamed output cannot be silently mismatched.
    """
    shapes = {name: value.shape for name, value in outputs.items()}
    for name, shape in shapes.items():
        if len(shape) != 3 or shape[0] != 1 or shape[2] not in (NUM_CLASSES, REG_WIDTH):
            raise ReferenceCheckError(f"unexpected ONNX output {name} of shape {shape}")
    by_anchors = sorted(shapes, key=lambda n: -shapes[n][1])
    cls = [n for n in by_anchors if shapes[n][2] == NUM_CLASSES]
    reg = [n for n in by_anchors if shapes[n][2] == REG_WIDTH]
    if [shapes[n][1] for n in cls] != [shapes[n][1] for n in reg]:
        raise ReferenceCheckError(f"class and distance outputs cover different anchors: {shapes}")
    return cls, reg


def compare(label: str, raw, outputs: dict) -> float:
    """Print per-output and overall max / mean abs differences; return the overall max."""
    import numpy as np

    cls, reg = split_outputs(outputs)
    anchors = sum(outputs[n].shape[1] for n in cls)
    if raw.shape != (1, anchors, NUM_CLASSES + REG_WIDTH):
        raise ReferenceCheckError(f"torch raw output {raw.shape} does not match the ONNX outputs' {anchors} anchors")
    reference = np.concatenate(
        [np.concatenate([outputs[n] for n in cls], axis=1), np.concatenate([outputs[n] for n in reg], axis=1)], axis=2
    )
    print(f"[{label}]")
    start = 0
    for c, r in zip(cls, reg, strict=True):
        stop = start + outputs[c].shape[1]
        for name, columns in ((c, slice(0, NUM_CLASSES)), (r, slice(NUM_CLASSES, None))):
            diff = np.abs(raw[:, start:stop, columns] - outputs[name])
            print(f"  {name:14s} {str(outputs[name].shape):16s} max {diff.max():.3e}  mean {diff.mean():.3e}")
        start = stop
    diff = np.abs(raw - reference)
    print(f"  {'all':14s} {str(reference.shape):16s} max {diff.max():.3e}  mean {diff.mean():.3e}")
    return float(diff.max())


def check(tolerance: float, rebuild: bool) -> int:
    import numpy as np
    import torch

    from privinfer import assets
    from privinfer.models.nanodet import load_nanodet

    work = assets.cache_dir() / "reference"
    inputs = reference_inputs()  # first, so a missing asset fails before the slow venv build
    model_json, shard = assets.require("nanodet-graph"), assets.require("nanodet-weights")
    python = ensure_tool_venv(assets.cache_dir() / "reference-venv")
    onnx_path = ensure_onnx(python, model_json, shard, work / "nanodet.onnx", rebuild)
    np.savez(work / "inputs.npz", **inputs)
    _run_tool(
        [str(python), __file__, "_run-onnx", str(onnx_path), str(work / "inputs.npz"), str(work / "onnx-outputs.npz")],
        "onnxruntime run",
    )
    model = load_nanodet()
    worst = 0.0
    with np.load(work / "onnx-outputs.npz") as saved:
        for label, x in inputs.items():
            outputs = {k.split("/", 1)[1]: saved[k] for k in saved.files if k.startswith(label + "/")}
            with torch.no_grad():
                raw = model(torch.from_numpy(x)).numpy()
            worst = max(worst, compare(label, raw, outputs))
    verdict = "OK" if worst < tolerance else "FAIL"
    print(f"{verdict}: max abs difference {worst:.3e} (tolerance {tolerance:g}) against {onnx_path}")
    return 0 if worst < tolerance else 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in _TOOL_STEPS:
        _TOOL_STEPS[argv[0]](*argv[1:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tolerance", type=float, default=TOLERANCE, help="largest allowed max abs difference")
    parser.add_argument("--rebuild", action="store_true", help="convert to ONNX again even if a conversion is cached")
    args = parser.parse_args(argv)
    from privinfer.errors import PrivinferError

    started = time.perf_counter()
    try:
        status = check(args.tolerance, args.rebuild)
    except (ReferenceCheckError, PrivinferError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"took {time.perf_counter() - started:.1f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
