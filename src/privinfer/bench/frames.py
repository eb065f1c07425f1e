"""The frames the benchmark measures on: scene frames of the corpus, the vtest.avi video, and
synthetic frames with a known number of faces. Everything falls back to the sample photos that
`make assets` fetches, so a fresh checkout can run the benchmark before `privinfer data fetch`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from privinfer import assets
from privinfer.data import corpus, media, sources
from privinfer.errors import AssetMissingError
from privinfer.images import read_image
from privinfer.types import Box

VIDEO_ASSET = "opencv-vtest.avi"  # OpenCV's sample pedestrians video (768x576, 795 frames), a corpus source
SAMPLE_PHOTOS = ("dog.jpg", "person.jpg", "horses.jpg")


@dataclass(frozen=True)
class FrameSet:
    """Frames to measure on. ``key`` names them exactly (measurements are cached by it)."""

    key: str
    images: list[np.ndarray]
    description: str


def resize(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """To ``size`` (width, height), aspect not kept: the benchmark wants exact frame sizes."""
    if (rgb.shape[1], rgb.shape[0]) == size:
        return rgb
    shrinking = size[0] * size[1] < rgb.shape[0] * rgb.shape[1]
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def _spread(total: int, count: int) -> list[int]:
    """``count`` indices over ``total`` items: evenly spread, cycling when more are wanted than exist."""
    if count <= total:
        return [int(i) for i in np.linspace(0, total - 1, count).round()]
    return [i % total for i in range(count)]


def scene_images() -> tuple[list[np.ndarray], str]:
    """The corpus's scene frames (streets, people, faces), or the sample photos when it is not built."""
    try:
        scenes = corpus.load_split(corpus.SCENES)
        return list(scenes.images), f"the corpus's {len(scenes)} scene frames"
    except AssetMissingError:
        from skimage.data import astronaut

        photos = [read_image(assets.require(name)).pixels for name in SAMPLE_PHOTOS] + [astronaut()]
        return photos, f"{len(photos)} sample photos (scenes split not built: privinfer data fetch)"


def scene_frames(count: int, size: tuple[int, int]) -> FrameSet:
    """``count`` scene frames resized to ``size`` (width, height)."""
    images, description = scene_images()
    picked = [resize(images[i], size) for i in _spread(len(images), count)]
    return FrameSet(f"scenes-{count}-{size[0]}x{size[1]}", picked, f"{count} frames from {description}")


def video_stream(count: int) -> tuple[str, Iterator[np.ndarray]]:
    """The first ``count`` consecutive frames of vtest.avi, decoded one by one as they are taken
    (or the scene frames when the video is not cached), and what they are."""
    sources.register()  # the corpus's source files are assets once registered (importing does it too)
    if assets.verify(VIDEO_ASSET):
        path = assets.require(VIDEO_ASSET)
        count = min(count, media.video_frame_count(path))
        frames = (rgb for _, rgb in media.video_frames(path, range(count)))
        return f"the first {count} frames of vtest.avi (768x576)", frames
    images, description = scene_images()
    picked = [images[i] for i in _spread(len(images), count)]
    return f"{count} frames from {description} (vtest.avi not cached)", iter(picked)


def video_clip(count: int, size: tuple[int, int]) -> FrameSet:
    """The first ``count`` consecutive frames of vtest.avi resized to ``size`` (width, height), for
    what depends on a stream's state (the face cascade searches where the last frame's persons
    were); the scene frames when the video is not cached."""
    description, frames = video_stream(count)
    picked = [resize(rgb, size) for rgb in frames]
    return FrameSet(f"vtest-{count}-{size[0]}x{size[1]}", picked, description)


def face_crops(count: int) -> list[np.ndarray]:
    """``count`` face crops of held-out persons (corpus), or scikit-image's LFW faces when it is not built."""
    try:
        faces = list(corpus.load_split(corpus.FACES_TEST).images)
    except AssetMissingError:
        faces = media.lfw_faces()
    return [faces[i] for i in _spread(len(faces), count)]


def frame_with_faces(background: np.ndarray, faces: int, side: int = 64) -> tuple[np.ndarray, list[Box]]:
    """``background`` with ``faces`` face crops pasted on a regular grid (``side`` px each) and their boxes.

    The grid has as many cells as needed, row-major, so the faces spread over the whole frame.
    """
    frame = background.copy()
    height, width = frame.shape[:2]
    if faces == 0:
        return frame, []
    columns = int(np.ceil(np.sqrt(faces * width / height)))
    rows = int(np.ceil(faces / columns))
    cell_w, cell_h = width / columns, height / rows
    if min(cell_w, cell_h) < side:
        raise ValueError(f"{faces} faces of {side} px do not fit a {width}x{height} frame")
    boxes = []
    for index, crop in enumerate(face_crops(faces)):
        row, column = divmod(index, columns)
        x1 = int(column * cell_w + (cell_w - side) / 2)
        y1 = int(row * cell_h + (cell_h - side) / 2)
        frame[y1 : y1 + side, x1 : x1 + side] = cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA)
        boxes.append(Box(x1, y1, x1 + side, y1 + side))
    return frame, boxes
