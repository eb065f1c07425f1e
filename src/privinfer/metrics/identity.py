"""Face identity: would a face-recognition system say a reconstruction shows the same person?

SSIM and ImageNet features ask whether a reconstruction *looks like* the original; an attacker
who wants to know *who* is in a privatized tile asks a face recogniser. We use dlib's
face-recognition ResNet (128-d descriptors, 99.38 % on LFW; assets ``dlib-face-recognition`` and
``dlib-landmarks-5``, CC0), which is what the widely used ``face_recognition`` package runs.

Alignment: the network was trained on chips cut by ``dlib.get_face_chip`` from five landmarks
(eye corners, nose), so every chunk goes through the same steps: the 5-point shape predictor is run
on the face box inside the chunk, then the aligned 150 x 150 chip is cut from its landmarks.
Corpus chunks are square crops of a face box grown by the corpus margin (1.3), so the face box is
the chunk's central 1/1.3. Resizing the whole chunk to 150 px instead puts the face at the wrong
scale and leaves head tilt in: on the corpus faces at 64 px, nearest-neighbour identification of
held-out persons fell from 0.92 (aligned) to 0.72 (plain resize). A reconstruction is aligned from
its own landmarks, as an attacker holding only the reconstruction would do.

Two scores, both on held-out persons:

- ``identity``: mean cosine similarity of the descriptors of each rebuilt chunk and its original.
  dlib descriptors are not centred, so two *different* people already score about 0.85 and the
  same person about 0.95; compare with the floor attacker's figure, not with 0.
- re-identification rate: per person, the share of their rebuilt chunks whose nearest entry
  (Euclidean, dlib's metric) in a gallery of one mean original descriptor per person is that
  person, averaged over persons (balanced: the held-out persons are very unequal, e.g. 472 of 616
  corpus chunks are one man, so the plain share would reward always guessing him). Chance, for
  any constant or blind guess, is then 1 / persons. The gallery is built from all originals, the
  queried chunk's own included, so a person with one chunk is still in it; this measures the
  attacker against a gallery that holds the very photos that were privatized, an upper bound on
  what a real gallery gives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from privinfer import assets
from privinfer.errors import ConfigError

CHIP_SIZE = 150  # what the ResNet takes
CHIP_PADDING = 0.25  # dlib's default, the padding the ResNet was trained with
CORPUS_MARGIN = 1.3  # chunk side / face box side in the corpus (privinfer.data.build.BuildOptions.margin)
DESCRIPTOR_SIZE = 128
MODEL_ASSETS = ("dlib-face-recognition", "dlib-landmarks-5")


class FaceDescriptors:
    """dlib's 5-point landmark predictor and face-recognition ResNet, loaded once (about 30 MB).

    Build with `FaceDescriptors.load()`; call on a batch of face chunks to get (N, 128) descriptors.
    """

    def __init__(self, recogniser, landmarks, margin: float = CORPUS_MARGIN) -> None:
        if margin < 1:
            raise ConfigError(f"face margin must be at least 1 (chunk side / face side), got {margin}")
        self._recogniser, self._landmarks, self.margin = recogniser, landmarks, margin
        self._dlib = import_dlib()

    @classmethod
    def load(cls, margin: float = CORPUS_MARGIN) -> FaceDescriptors:
        """Load both dlib models from the asset cache.

        Raises:
            AssetMissingError: a model is not cached (the message names ``privinfer assets fetch``).
            ConfigError: dlib is not installed.
        """
        paths = [assets.require(name) for name in MODEL_ASSETS]
        dlib = import_dlib()
        return cls(dlib.face_recognition_model_v1(str(paths[0])), dlib.shape_predictor(str(paths[1])), margin)

    def __call__(self, chunks) -> np.ndarray:
        """(N, 128) float64 descriptors of face chunks.

        ``chunks``: uint8 (N, H, W, 3) RGB, or float (N, 3, H, W) in [0, 1] (a numpy array or a torch
        tensor, e.g. an attacker's reconstructions; values outside [0, 1] are clipped).

        Raises:
            ValueError: the batch is not RGB images in one of those layouts.
        """
        images = as_uint8_hwc(chunks)
        if not len(images):
            return np.zeros((0, DESCRIPTOR_SIZE))
        chips = [self._chip(image) for image in images]
        return np.asarray(self._recogniser.compute_face_descriptor(chips), dtype=np.float64)

    def _chip(self, image: np.ndarray):
        dlib = self._dlib
        height, width = image.shape[:2]
        inset_x, inset_y = width * (1 - 1 / self.margin) / 2, height * (1 - 1 / self.margin) / 2
        face = dlib.rectangle(round(inset_x), round(inset_y), round(width - inset_x), round(height - inset_y))
        return dlib.get_face_chip(image, self._landmarks(image, face), size=CHIP_SIZE, padding=CHIP_PADDING)


def import_dlib():
    """The dlib module.

    Raises:
        ConfigError: it does not import (the message says what to install, or how to turn the metric off).
    """
    try:
        import dlib
    except ImportError as error:
        raise ConfigError(
            f"the identity metric needs dlib ({error}); install it with: pip install dlib-bin==20.0.1.post1,"
            " or set identity = false in the evaluation config"
        ) from None
    return dlib


def identity_available() -> bool:
    """True when dlib imports and both model assets are cached (nothing is loaded)."""
    try:
        import_dlib()
    except ConfigError:
        return False
    return all(assets.asset_path(name).is_file() for name in MODEL_ASSETS)


def as_uint8_hwc(chunks) -> np.ndarray:
    """A batch of RGB images as contiguous uint8 (N, H, W, 3), which dlib wants.

    Raises:
        ValueError: not a 4-d RGB batch, channels first (float) or last.
    """
    images = chunks.detach().cpu().numpy() if hasattr(chunks, "detach") else np.asarray(chunks)
    if images.ndim != 4 or 3 not in (images.shape[1], images.shape[3]):
        raise ValueError(f"face chunks must be (N, H, W, 3) uint8 or (N, 3, H, W) float; got {images.shape}")
    if images.shape[3] != 3:
        images = images.transpose(0, 2, 3, 1)
    if images.dtype != np.uint8:
        images = np.round(np.clip(images, 0.0, 1.0) * 255).astype(np.uint8)
    return np.ascontiguousarray(images)


def cosine_pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N,) cosine similarity of a[i] and b[i] (descriptors (N, D)).

    Raises:
        ValueError: the batches differ in shape.
    """
    if a.shape != b.shape:
        raise ValueError(f"cosine_pairs compares pairs: got {a.shape} and {b.shape}")
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.sum(a * b, axis=1) / np.maximum(norms, 1e-12)


@dataclass(frozen=True)
class Gallery:
    """One mean descriptor per person: what an attacker matches a face against."""

    persons: tuple[str, ...]
    descriptors: np.ndarray  # (P, D), row i is persons[i]

    @classmethod
    def of(cls, descriptors: np.ndarray, persons: Sequence[str]) -> Gallery:
        """The gallery of labelled descriptors, persons sorted.

        Raises:
            ValueError: labels and descriptors differ in number, or there are none.
        """
        if len(descriptors) != len(persons) or not len(persons):
            raise ValueError(f"a gallery needs one person per descriptor: {len(descriptors)} vs {len(persons)}")
        names = tuple(sorted(set(persons)))
        labels = np.asarray(persons)
        return cls(names, np.stack([descriptors[labels == name].mean(axis=0) for name in names]))

    def nearest(self, descriptors: np.ndarray) -> list[str]:
        """The person whose mean descriptor is closest (Euclidean) to each row of ``descriptors``."""
        distances = np.linalg.norm(descriptors[:, None, :] - self.descriptors[None], axis=2)
        return [self.persons[i] for i in distances.argmin(axis=1)]

    @property
    def chance(self) -> float:
        """The balanced re-identification rate of a blind guess: 1 / persons."""
        return 1.0 / len(self.persons)


def reidentification_rate(gallery: Gallery, descriptors: np.ndarray, persons: Sequence[str]) -> float:
    """Balanced re-identification: per person, the share of their ``descriptors`` whose nearest
    gallery person is them, averaged over the persons present (a blind guess scores 1 / persons).

    Raises:
        ValueError: labels and descriptors differ in number.
    """
    if len(descriptors) != len(persons):
        raise ValueError(f"one person per descriptor: {len(descriptors)} vs {len(persons)}")
    if not len(persons):
        return 0.0
    hits = np.asarray(gallery.nearest(descriptors)) == np.asarray(persons)
    labels = np.asarray(persons)
    return float(np.mean([hits[labels == person].mean() for person in sorted(set(persons))]))


VERIFY_DISTANCE = 0.6  # dlib's own threshold: closer descriptors are "the same person"


def verification_chance(descriptors: np.ndarray, persons: Sequence[str]) -> float:
    """The share of pairs of originals of *different* persons that dlib verifies as one person: what
    a verification rate is to be compared with (a rebuild of anybody at all scores about this)."""
    labels = np.asarray(persons)
    distances = np.linalg.norm(descriptors[:, None, :] - descriptors[None], axis=2)
    different = labels[:, None] != labels[None]
    return float((distances[different] < VERIFY_DISTANCE).mean()) if different.any() else float("nan")


@dataclass(frozen=True)
class IdentityScores:
    identity: float  # mean cosine of rebuilt vs original descriptors
    reid_rate: float
    reid_chance: float
    verified: float = float("nan")  # share of rebuilds within VERIFY_DISTANCE of their own original
    verified_chance: float = float("nan")  # verification_chance of the originals


@dataclass(frozen=True)
class IdentityReference:
    """The originals' descriptors, their persons and the gallery, computed once per evaluation.

    Every attack on every obfuscator is scored against the same reference (the originals do not
    change), which saves the ResNet a pass over the originals per score.
    """

    describe: FaceDescriptors
    originals: np.ndarray  # (N, 128)
    persons: tuple[str, ...]
    gallery: Gallery
    verified_chance: float = float("nan")

    @classmethod
    def build(cls, describe: FaceDescriptors, originals, persons: Sequence[str]) -> IdentityReference:
        """Descriptors of the original chunks (any layout `FaceDescriptors` takes), labelled by person.

        Raises:
            ValueError: chunks and persons differ in number, or a person label is empty.
        """
        if any(not p for p in persons):
            raise ValueError("every original face chunk needs a person label for re-identification")
        descriptors = describe(originals)
        chance = verification_chance(descriptors, persons)
        return cls(describe, descriptors, tuple(persons), Gallery.of(descriptors, persons), chance)

    def score(self, rebuilt) -> IdentityScores:
        """Scores of reconstructions of the first ``len(rebuilt)`` originals (a white-box attack
        rebuilds only a few), against the gallery of all of them."""
        count = len(rebuilt)
        if count > len(self.persons):
            raise ValueError(f"{count} reconstructions of only {len(self.persons)} originals")
        found = self.describe(rebuilt)
        return IdentityScores(
            identity=float(cosine_pairs(found, self.originals[:count]).mean()) if count else float("nan"),
            reid_rate=reidentification_rate(self.gallery, found, self.persons[:count]),
            reid_chance=self.gallery.chance,
            verified=float((np.linalg.norm(found - self.originals[:count], axis=1) < VERIFY_DISTANCE).mean())
            if count
            else float("nan"),
            verified_chance=self.verified_chance,
        )
