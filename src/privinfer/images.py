"""Reading images from disk into `Image` values, with errors that name the file and the problem."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from privinfer.errors import ImageReadError
from privinfer.types import Image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def read_image(path: str | Path) -> Image:
    """Decode an image file into RGB uint8.

    Grayscale is expanded to three channels, alpha is dropped, 16-bit is scaled to 8-bit.

    Raises:
        ImageReadError: the file is missing, empty, a folder, or not a decodable image.
    """
    path = Path(path)
    if not path.exists():
        raise ImageReadError(f"{path}: no such file")
    if path.is_dir():
        raise ImageReadError(f"{path}: is a folder, not an image")
    data = path.read_bytes()
    if not data:
        raise ImageReadError(f"{path}: file is empty")
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if decoded is None or decoded.size == 0:
        raise ImageReadError(f"{path}: not a readable image (unknown format or corrupt data)")
    return Image(to_rgb8(decoded), str(path))


def to_rgb8(decoded: np.ndarray) -> np.ndarray:
    """Normalise an OpenCV-decoded array (BGR/BGRA/gray, 8 or 16 bit) to contiguous RGB uint8."""
    if decoded.dtype == np.uint16:
        decoded = (decoded >> 8).astype(np.uint8)
    elif decoded.dtype != np.uint8:
        decoded = np.clip(decoded, 0, 255).astype(np.uint8)
    if decoded.ndim == 2:
        return np.ascontiguousarray(cv2.cvtColor(decoded, cv2.COLOR_GRAY2RGB))
    if decoded.shape[2] == 4:
        return np.ascontiguousarray(cv2.cvtColor(decoded, cv2.COLOR_BGRA2RGB))
    return np.ascontiguousarray(cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB))


def write_image(path: str | Path, rgb: np.ndarray) -> None:
    """Write an RGB uint8 array; the format follows the file suffix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise ImageReadError(f"{path}: could not write image (unsupported suffix or unwritable folder)")
