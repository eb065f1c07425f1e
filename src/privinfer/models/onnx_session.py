"""One way to open an ONNX model on the CPU, shared by the ONNX detectors."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort
from onnxruntime.capi.onnxruntime_pybind11_state import Fail, InvalidArgument, InvalidGraph, InvalidProtobuf, NoSuchFile

from privinfer.errors import ModelGraphError

# onnxruntime logs a warning per initializer that an old exporter also listed as a graph input
# (PP-OCR's det model has hundreds); errors are still reported.
_LOG_ERRORS_ONLY = 3
_LOAD_ERRORS = (Fail, InvalidArgument, InvalidGraph, InvalidProtobuf, NoSuchFile)


def cpu_session(model: Path | bytes, threads: int | None = None, spinning: bool = False) -> ort.InferenceSession:
    """An onnxruntime CPU session for a model file or serialised model bytes.

    threads: intra-op threads; None lets onnxruntime use every core.
    spinning: whether idle worker threads spin-wait for the next call. Off by default: a session
        runs once per frame among other work (the client's tiling, head, sending; a server's gRPC
        threads), and threads spinning after each call take the cores that work needs. Measured
        with two local servers on 2 cores: a spinning face detector made the servers' stage of
        the same face-free frames 47 -> 60 ms.

    Raises:
        ModelGraphError: onnxruntime cannot load the model (names the file when given a path).
    """
    options = ort.SessionOptions()
    options.log_severity_level = _LOG_ERRORS_ONLY
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    source = str(model) if isinstance(model, Path) else model
    try:
        return ort.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])
    except _LOAD_ERRORS as error:
        where = model if isinstance(model, Path) else "in-memory model"
        raise ModelGraphError(f"{where}: onnxruntime cannot load it ({error})") from error
