"""`privinfer detect`: task-model and sensitive detections on image files, written for people.

Inputs are image files or folders of images, as `privinfer run` takes them. Each image either
gets its annotated copy and JSON, or one error line naming the file; a batch goes on with the
other images. The first line says which sensitive detectors run, at which threshold.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from privinfer.cli.anonymize import ANONYMIZED_SUFFIX, anonymize
from privinfer.cli.draw import annotate_detections
from privinfer.cli.options import check_anonymize
from privinfer.client import detect as sensitive
from privinfer.client.detect.base import DetectorOptions
from privinfer.errors import ConfigError, PrivinferError
from privinfer.images import OutputNames, images_in, pixel_limit, read_image, write_image
from privinfer.models import nanodet


@dataclass(frozen=True)
class DetectJob:
    images: list[str]
    sensitive: list[str]
    out: Path
    threshold: float | None
    mask_scale: float
    input_size: int
    device: str
    max_pixels: int | None = None  # None: $PRIVINFER_MAX_PIXELS or the default (images.pixel_limit)
    anonymize: str | None = None  # also write NAME_anonymized.jpg: "blur", "fill" or "mosaic"


def run_detect_job(job: DetectJob, report: Callable[[str], None], warn: Callable[[str], None]) -> int:
    """Run the job; returns the number of images that failed.

    Raises:
        PrivinferError: the job cannot start (an out-of-range option, an unknown detector, missing
            assets); a bad image is warned about and the job goes on.
    """
    if job.threshold is not None and not 0 <= job.threshold <= 1:
        raise ConfigError(f"--thresh {job.threshold}: the detector threshold must be between 0 and 1")
    if not 1 <= job.mask_scale < float("inf"):
        raise ConfigError(f"--mask-scale {job.mask_scale}: must be at least 1 (it grows sensitive boxes)")
    try:
        nanodet.check_input_size(job.input_size)
    except ConfigError as error:
        raise ConfigError(f"--input-size: {error}") from None
    check_anonymize(job.anonymize, job.out)
    max_pixels = pixel_limit(job.max_pixels)
    options = DetectorOptions(job.threshold, job.mask_scale)
    detectors = {name: sensitive.create(name, options) for name in job.sensitive}
    report(sensitive.describe(detectors, job.mask_scale))
    sources, failures = _image_paths(job.images, warn)
    model = nanodet.load_nanodet(job.device) if sources else None
    names = OutputNames()
    for source in sources:
        try:
            image = read_image(source, max_pixels)
        except PrivinferError as error:
            warn(f"error: {error}")
            failures += 1
            continue
        started = time.perf_counter()
        found = nanodet.detect(model, image.pixels, job.input_size)
        task_ms = (time.perf_counter() - started) * 1e3
        private = [d for detector in detectors.values() for d in detector(image.pixels)]
        # Two inputs may share a stem (a/x.jpg, b/x.png): the second gets x-2.jpg and x-2.json.
        stem = Path(names.claim(f"{Path(source).stem}.jpg")).stem
        annotated = annotate_detections(image.pixels, found, private)
        write_image(job.out / f"{stem}.jpg", annotated)
        if job.anonymize is not None:
            hidden = anonymize(image.pixels, [d.box for d in private], job.anonymize)
            write_image(job.out / names.claim(f"{stem}{ANONYMIZED_SUFFIX}.jpg"), hidden)
        record = {
            "image": source,
            "detections": [d.to_json() for d in found],
            "sensitive": [d.to_json() for d in private],
            "sensitive_detectors": list(detectors),
            "timings_ms": {"task_model": round(task_ms, 2)},
        }
        (job.out / f"{stem}.json").write_text(json.dumps(record, indent=2))
        report(f"{source}: {len(found)} detections, {len(private)} sensitive regions -> {job.out / (stem + '.jpg')}")
        for detection in found:
            box = ", ".join(f"{v:.0f}" for v in detection.box.as_list())
            report(f"  {detection.label:14s} {detection.score:.2f}  [{box}]")
    return failures


def _image_paths(inputs: list[str], warn: Callable[[str], None]) -> tuple[list[str], int]:
    """Inputs with each folder replaced by its images (`images.images_in`), and how many
    inputs failed (a folder with no image, or one that cannot be listed)."""
    paths, failures = [], 0
    for text in inputs:
        if not Path(text).is_dir():
            paths.append(text)
            continue
        try:
            paths.extend(str(p) for p in images_in(text, warn))
        except PrivinferError as error:
            warn(f"error: {error}")
            failures += 1
    return paths, failures
