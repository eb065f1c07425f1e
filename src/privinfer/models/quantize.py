"""int8 static quantisation of an ONNX model, rebuilt offline from committed activation ranges.

Static quantisation needs each activation's range, measured by running the float model on
calibration frames. The ranges are small (a JSON of min/max per tensor), so the project commits
them, measured once by ``scripts/quantize_centerface.py`` on the corpus's scene frames; the int8
model (weights quantised per channel, activations per tensor, QDQ format) is rebuilt from the
float model asset and those ranges on first use and cached under ``cache_dir()/onnx/``. Nothing
is downloaded, and no calibration frame is needed at run time.

On a CPU with int8 dot-product instructions (VNNI) onnxruntime runs such a model faster than the
float one; what it costs in faces found is measured by ``scripts/detector_runtimes.py``.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from privinfer import assets

QUANTIZE_VERSION = 1  # bump when the recipe below changes: cached models are rebuilt
_OPSET = 13  # per-channel DequantizeLinear (its axis attribute) needs opset 13


def quantized_path(name: str, model: bytes, ranges: Path) -> Path:
    """The cached int8 model for ``model`` (serialised float ONNX) and the activation ``ranges``
    (JSON written by ``calibrate``), built on first use; named by a hash of both."""
    digest = hashlib.sha256(model + ranges.read_bytes()).hexdigest()[:12]
    path = assets.cache_dir() / "onnx" / f"{name}-int8-{digest}-v{QUANTIZE_VERSION}.onnx"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="privinfer-quantize-") as folder:
            built = Path(folder) / "int8.onnx"
            _quantize(_prepared(model, Path(folder)), built, None, ranges)
            built.replace(path)  # one rename: a concurrent reader never sees half a file
    return path


def calibrate(model: bytes, blobs: Iterable[np.ndarray], input_name: str, ranges: Path) -> Path:
    """Measure the activation ranges of ``model`` on ``blobs`` (network inputs, NCHW float32) and
    write them to ``ranges``; returns the int8 model built from them (a temporary file)."""
    folder = Path(tempfile.mkdtemp(prefix="privinfer-calibrate-"))
    ranges.unlink(missing_ok=True)  # a stale file would be read instead of measured
    built = folder / "int8.onnx"
    _quantize(_prepared(model, folder), built, _Reader(blobs, input_name), ranges)
    return built


class _Reader:
    """onnxruntime.quantization's calibration data reader over network inputs."""

    def __init__(self, blobs: Iterable[np.ndarray], input_name: str) -> None:
        self._feeds = ({input_name: blob} for blob in blobs)

    def get_next(self) -> dict | None:
        return next(self._feeds, None)


def _prepared(model: bytes, folder: Path) -> Path:
    """The float model at opset 13 with shapes inferred and graph optimisations (batch norms
    folded) applied, as onnxruntime's quantisation recommends; the same steps every time, so that
    tensor names match the committed ranges."""
    import onnx
    import onnxruntime as ort
    from onnx import version_converter
    from onnxruntime.quantization.shape_inference import quant_pre_process

    converted = folder / "opset.onnx"
    onnx.save(version_converter.convert_version(onnx.load_from_string(model), _OPSET), str(converted))
    prepared = folder / "prepared.onnx"
    ort.set_default_logger_severity(3)  # the optimiser warns once per unused batch-norm counter
    quant_pre_process(str(converted), str(prepared), skip_symbolic_shape=True)
    return prepared


def _quantize(prepared: Path, out: Path, reader: _Reader | None, ranges: Path) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    quantize_static(
        str(prepared), str(out), reader, quant_format=QuantFormat.QDQ, per_channel=True,
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
        calibration_cache_path=str(ranges),
    )  # fmt: skip
