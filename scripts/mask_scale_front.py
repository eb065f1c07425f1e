"""How much to hide: for each --mask-scale, re-identification of the held-out persons from what is sent
of their faces' chunks, and frame mAP / person AP of the private pipeline on the photos of people.

Re-identification: the held-out persons' faces (the corpus's test sources, found again by CenterFace
with no growth), cut with 2.6 times the face's side around them; the region is the face box grown by
the scale, filled as the client fills it (the obfuscator's own fill); dlib's descriptor of the filled
picture in the corpus's framing (1.3 times the face) is matched against the gallery of the originals
in that framing (top-1, balanced per person). This is the context alone, read by dlib with no trained
attacker: a lower bound of what a trained inpainting attacker gets (the region evaluation's floor
attacker re-identifies 12%, its region being the face box itself, scale 1.0).

    .venv/bin/python scripts/mask_scale_front.py --scales 1.0,1.3,1.6,2.0 --obfuscator repair
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from privinfer.client import detect
from privinfer.client.detect.base import DetectorOptions
from privinfer.client.fill import fill_regions
from privinfer.data import sources
from privinfer.data.build import BuildOptions, face_crops
from privinfer.data.crops import cut
from privinfer.data.people_photos import people_photos
from privinfer.evaluate.frame_utility import frame_utility
from privinfer.metrics.identity import CORPUS_MARGIN, FaceDescriptors, Gallery, reidentification_rate
from privinfer.obfuscate import create_obfuscator
from privinfer.types import Box

MARGIN = 2.6  # crop side / face side: room for the largest scale and some context
SIDE = 256


def held_out_faces(per_person: int, seed: int) -> tuple[np.ndarray, list[Box], list[str]]:
    """Crops of the held-out persons, MARGIN times their face's side (shifted, never padded, at the
    picture's edge), with the face's square box in crop pixels; those whose square at the corpus's
    margin does not fit in the crop are left out."""
    sources.register()
    detector = detect.create("faces", DetectorOptions(threshold=0.5, mask_scale=1.0))
    images, faces, persons = [], [], []
    for source in (s for s in sources.FACE_SOURCES if s.split == sources.TEST):
        squares = face_crops(
            source, detector, BuildOptions(margin=1.0, crop_size=8, max_crops_per_video=per_person), []
        )
        wide = face_crops(
            source, detector, BuildOptions(margin=MARGIN, crop_size=SIDE, max_crops_per_video=per_person), []
        )
        for square, crop in zip(squares, wide, strict=True):
            scale = SIDE / crop.box.width
            face = Box((square.box.x1 - crop.box.x1) * scale, (square.box.y1 - crop.box.y1) * scale,
                       (square.box.x2 - crop.box.x1) * scale, (square.box.y2 - crop.box.y1) * scale)  # fmt: skip
            framed = face.scaled_about_centre(CORPUS_MARGIN)
            if framed.x1 < 0 or framed.y1 < 0 or framed.x2 > SIDE or framed.y2 > SIDE:
                continue
            images.append(crop.image)
            faces.append(face)
            persons.append(crop.person)
    keep = _capped(persons, per_person, seed)
    return np.stack([images[i] for i in keep]), [faces[i] for i in keep], [persons[i] for i in keep]


def framed(image: np.ndarray, face: Box) -> np.ndarray:
    """The corpus's framing of a face: the square CORPUS_MARGIN times its side, at 128 px."""
    return cut(image, face.scaled_about_centre(CORPUS_MARGIN), 128)


def _capped(persons: list[str], cap: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    labels = np.asarray(persons)
    keep: list[int] = []
    for person in sorted(set(persons)):
        index = np.flatnonzero(labels == person)
        keep.extend(index if len(index) <= cap else rng.choice(index, cap, replace=False))
    return sorted(int(i) for i in keep)


def region_at(face: Box, scale: float) -> tuple[int, int, int, int]:
    """The face box grown by ``scale`` about its centre, as whole crop pixels."""
    grown = face.scaled_about_centre(scale)
    return (max(0, int(np.floor(grown.x1))), max(0, int(np.floor(grown.y1))),
            min(SIDE, int(np.ceil(grown.x2))), min(SIDE, int(np.ceil(grown.y2))))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="1.0,1.3,1.6,2.0")
    parser.add_argument("--obfuscator", default="repair")
    parser.add_argument("--per-person", type=int, default=40)
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--skip-utility", action="store_true")
    parser.add_argument("--out", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args()
    scales = [float(s) for s in args.scales.split(",")]
    fill = create_obfuscator(args.obfuscator).preferred_fill
    images, faces, persons = held_out_faces(args.per_person, 0)
    describe = FaceDescriptors.load()
    originals = describe(np.stack([framed(image, face) for image, face in zip(images, faces, strict=True)]))
    gallery = Gallery.of(originals, persons)
    result = {"fill": fill, "crops": len(images), "persons": len(set(persons)), "chance": gallery.chance, "scales": {}}
    for scale in scales:
        filled = [framed(fill_regions(i, [region_at(f, scale)], fill), f) for i, f in zip(images, faces, strict=True)]
        rate = reidentification_rate(gallery, describe(np.stack(filled)), persons)
        result["scales"][str(scale)] = {"reid": rate}
    if not args.skip_utility:
        entries = {str(s): (args.obfuscator, {}, {"mask_scale": s}) for s in scales}
        utility = frame_utility(entries, people_photos(), args.servers)
        for scale in scales:
            row = utility["obfuscators"][str(scale)]
            result["scales"][str(scale)].update(
                frame_map=row["with_faces"]["map"], person_ap=row["person_with_faces"]["map"]
            )
    print(
        f"{result['crops']} crops of {result['persons']} held-out persons (chance {result['chance']:.3f}), fill {fill}"
    )
    print("| mask scale | re-identified (context, dlib) | frame mAP | person AP |")
    print("|---|---|---|---|")
    for scale, row in result["scales"].items():
        print(f"| {scale} | {row['reid']:.3f} | {row.get('frame_map', float('nan')):.3f} | "
              f"{row.get('person_ap', float('nan')):.3f} |")  # fmt: skip
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
