"""Reading images from disk into `Image` values, with errors that name the file and the problem.

What is refused, and why (a privacy product must not process a frame it cannot see whole):

- a missing, empty, unreadable or non-image file, and a format Pillow cannot identify (the
  header must be readable before anything is decoded);
- an image over the pixel limit (``--max-pixels``, ``PRIVINFER_MAX_PIXELS``, default 50
  megapixels), judged from the header *before* decoding, so a decompression bomb costs nothing;
- a truncated file. OpenCV 4.14 returns no image for a JPEG that ends early (even one missing
  only its end marker) or a PNG that does; accepting the decodable part instead would pass a
  half-grey frame in which a face may be cut off and missed by the detector while its visible
  part goes out raw. ``tests/test_bad_inputs.py`` pins this behaviour. A JPEG corrupted *inside*
  its data (bit flips, not truncation) still decodes with libjpeg's error concealment: that is
  not detectable without decoding twice and is accepted.

Grayscale, alpha, palette and 16-bit images are accepted and normalised to RGB uint8.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image as PILImage

from privinfer.errors import ConfigError, ImageReadError
from privinfer.types import Image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
# The first bytes of the formats OpenCV decodes here: a file in a folder is an image by its content,
# so a photo saved without its extension is not skipped.
_PNM = tuple(f"P{n}".encode() for n in range(1, 7))
_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM", b"II*\x00", b"MM\x00*", *_PNM)
DEFAULT_MAX_PIXELS = 50_000_000
MAX_PIXELS_ENV = "PRIVINFER_MAX_PIXELS"


def looks_like_image(path: Path) -> bool:
    """Whether the file starts like a JPEG, PNG, BMP, WebP, TIFF or PNM image (unreadable: False)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(12)
    except OSError:
        return False
    return head.startswith(_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def folder_images(folder: Path) -> tuple[list[Path], list[Path]]:
    """A folder's images sorted by name, and the files skipped as not images, sorted too.

    A file is an image when its suffix says so (a corrupt one is then refused by `read_image`,
    naming it) or, whatever its suffix, when its first bytes are an image format's.

    Raises:
        ImageReadError: the folder cannot be listed.
    """
    try:
        files = sorted(p for p in folder.iterdir() if p.is_file())
    except OSError as error:
        raise ImageReadError(f"{folder}: cannot list the folder ({error.strerror or error})") from None
    images, skipped = [], []
    for path in files:
        (images if path.suffix.lower() in IMAGE_SUFFIXES or looks_like_image(path) else skipped).append(path)
    return images, skipped


def images_in(folder: Path | str, warn: Callable[[str], None] | None = None) -> list[Path]:
    """A folder's images (`folder_images`); ``warn`` hears 'warning: FOLDER: skipped N files that
    are not images: a.txt, ...' when some were skipped.

    Raises:
        ImageReadError: the folder cannot be listed or holds no image.
    """
    images, skipped = folder_images(Path(folder))
    if not images:
        raise ImageReadError(f"{folder}: folder has no images ({len(skipped)} files, none an image)")
    if skipped and warn is not None:
        shown = 5
        names = ", ".join(p.name for p in skipped[:shown]) + (", ..." if len(skipped) > shown else "")
        plural = "file that is not an image" if len(skipped) == 1 else "files that are not images"
        warn(f"warning: {folder}: skipped {len(skipped)} {plural}: {names}")
    return images


def pixel_limit(max_pixels: int | None = None) -> int:
    """The pixel limit to use: ``max_pixels`` if given, else ``$PRIVINFER_MAX_PIXELS``, else 50 M.

    Raises:
        ConfigError: the limit (or the variable) is not a positive whole number.
    """
    if max_pixels is None:
        text = os.environ.get(MAX_PIXELS_ENV, "").strip()
        if not text:
            return DEFAULT_MAX_PIXELS
        try:
            max_pixels = int(text.replace("_", ""))
        except ValueError:
            raise ConfigError(f"${MAX_PIXELS_ENV}={text!r} is not a whole number of pixels") from None
        where = f"${MAX_PIXELS_ENV}"
    else:
        where = "--max-pixels"
    if max_pixels < 1:
        raise ConfigError(f"{where} {max_pixels} must be at least 1 pixel")
    return max_pixels


def check_pixel_count(name: str, width: int, height: int, max_pixels: int) -> None:
    """Raises ImageReadError naming ``name`` when width x height is over ``max_pixels``."""
    if width * height > max_pixels:
        raise ImageReadError(
            f"{name}: {width}x{height} is {width * height:,} pixels, over the limit of {max_pixels:,} "
            f"(raise it with --max-pixels or ${MAX_PIXELS_ENV})"
        )


def read_image(path: str | Path, max_pixels: int | None = None) -> Image:
    """Decode an image file into RGB uint8, refusing anything over ``max_pixels`` before decoding.

    Grayscale is expanded to three channels, alpha is dropped, 16-bit is scaled to 8-bit.
    ``max_pixels`` None: ``pixel_limit()``'s default.

    Raises:
        ImageReadError: the file is missing, empty, a folder, unreadable, not a decodable image,
            truncated, or over the pixel limit.
        ConfigError: a bad pixel limit.
    """
    path = Path(path)
    limit = pixel_limit(max_pixels)
    if not path.exists():
        raise ImageReadError(f"{path}: no such file")
    if path.is_dir():
        raise ImageReadError(f"{path}: is a folder, not an image")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ImageReadError(f"{path}: cannot read the file ({error.strerror or error})") from None
    if not data:
        raise ImageReadError(f"{path}: file is empty")
    width, height, kind = _header(data, path)
    check_pixel_count(str(path), width, height, limit)
    try:
        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:  # OpenCV asserts on some corrupt headers instead of returning None
        decoded = None
    if decoded is None or decoded.size == 0:
        raise ImageReadError(f"{path}: not a readable image ({kind} header, but the data is corrupt or truncated)")
    # The decoder may disagree with the header reader on a crafted file: hold it to the limit too.
    check_pixel_count(str(path), decoded.shape[1], decoded.shape[0], limit)
    if decoded.ndim == 3 and decoded.shape[2] not in (1, 3, 4):
        raise ImageReadError(f"{path}: {decoded.shape[2]} colour channels; only gray, RGB and RGBA are read")
    return Image(to_rgb8(decoded), str(path))


def _header(data: bytes, path: Path) -> tuple[int, int, str]:
    """Width, height and format from the file's header (Pillow opens lazily: no pixel is decoded)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns on odd EXIF, large sizes: we judge size ourselves
            with PILImage.open(io.BytesIO(data)) as header:
                width, height = header.size
                kind = header.format or "image"
    except PILImage.DecompressionBombError:
        raise ImageReadError(f"{path}: over Pillow's decompression-bomb limit; not decoded") from None
    except Exception:  # Pillow's format parsers raise many kinds on corrupt headers; all mean the same
        raise ImageReadError(f"{path}: not a readable image (unknown format or corrupt header)") from None
    if width < 1 or height < 1:
        raise ImageReadError(f"{path}: image has no pixels ({width}x{height})")
    return width, height, kind


def to_rgb8(decoded: np.ndarray) -> np.ndarray:
    """Normalise an OpenCV-decoded array (BGR/BGRA/gray, 8 or 16 bit) to contiguous RGB uint8."""
    if decoded.dtype == np.uint16:
        decoded = (decoded >> 8).astype(np.uint8)
    elif decoded.dtype != np.uint8:
        decoded = np.clip(np.nan_to_num(decoded), 0, 255).astype(np.uint8)
    if decoded.ndim == 3 and decoded.shape[2] == 1:
        decoded = decoded[:, :, 0]
    if decoded.ndim == 2:
        return np.ascontiguousarray(cv2.cvtColor(decoded, cv2.COLOR_GRAY2RGB))
    if decoded.shape[2] == 4:
        return np.ascontiguousarray(cv2.cvtColor(decoded, cv2.COLOR_BGRA2RGB))
    return np.ascontiguousarray(cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB))


class OutputNames:
    """Output file names, made unique within a run (two inputs may share a stem)."""

    def __init__(self) -> None:
        self._used: set[str] = set()

    def claim(self, name: str) -> str:
        stem, suffix = Path(name).stem, Path(name).suffix
        candidate, n = name, 1
        while candidate in self._used:
            n += 1
            candidate = f"{stem}-{n}{suffix}"
        self._used.add(candidate)
        return candidate


def write_image(path: str | Path, rgb: np.ndarray) -> None:
    """Write an RGB uint8 array; the format follows the file suffix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise ImageReadError(f"{path}: could not write image (unsupported suffix or unwritable folder)")
