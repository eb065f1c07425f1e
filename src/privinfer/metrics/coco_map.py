"""True detection mAP on a user's COCO-format data set, computed by pycocotools' COCOeval.

`detection_map` compares two pipelines when no labels exist; with a labelled set this module
gives the reference numbers: mAP@[.5:.95] and mAP@.5 (bbox) of any detection callable.

Detections carry COCO class *names* (NanoDet's 80); they are matched to the file's category ids
by name. Detections of classes the file does not have are dropped, and the file's categories the
detector cannot name are left out of the mean (otherwise a "license plate" category would count
as AP 0 for a detector that never had that class). No name in common is an error: it means the
file uses another label set, and every figure would be 0.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from privinfer.errors import ConfigError
from privinfer.images import read_image
from privinfer.models.coco import COCO_CLASSES
from privinfer.types import Detection

Detect = Callable[[np.ndarray], list[Detection]]


class CocoDatasetError(ConfigError):
    """A COCO annotation file is unreadable, malformed, or shares no category with the detector."""


@dataclass(frozen=True)
class CocoScores:
    map: float  # mAP@[.5:.95]
    map50: float  # mAP@.5

    def to_json(self) -> dict:
        return {"map": self.map, "map50": self.map50}


@dataclass(frozen=True)
class CocoDataset:
    """A loaded annotation file, its image folder, and the category id of each detector label."""

    annotations: Path
    images: Path
    coco: object  # pycocotools.coco.COCO
    category_ids: dict[str, int]

    @classmethod
    def load(cls, annotations: str | Path, images: str | Path, labels: Iterable[str] = COCO_CLASSES) -> CocoDataset:
        """Read ``annotations`` (COCO JSON) and match its categories to ``labels`` by name.

        Raises:
            CocoDatasetError: the file is missing, not JSON, lacks images/annotations/categories, or no
                category name is one of ``labels``.
        """
        annotations, images = Path(annotations), Path(images)
        content = _read_annotations(annotations)
        ids = category_ids(content["categories"], labels)
        if not ids:
            names = sorted(str(c.get("name")) for c in content["categories"])
            raise CocoDatasetError(
                f"{annotations}: none of its categories ({', '.join(names[:10])}{', ...' if len(names) > 10 else ''})"
                " is a class the detector knows (COCO names such as person, car, dog)"
            )
        return cls(annotations, images, _coco_of(content), ids)

    def frames(self) -> list[tuple[int, Path]]:
        """(image id, file path) of every image in the file, in id order."""
        return [(image_id, self.images / self.coco.imgs[image_id]["file_name"]) for image_id in sorted(self.coco.imgs)]


def category_ids(categories: list[dict], labels: Iterable[str]) -> dict[str, int]:
    """Detector label -> the file's category id, for the labels the file names (names compared exactly)."""
    by_name = {c["name"]: int(c["id"]) for c in categories if "name" in c and "id" in c}
    return {label: by_name[label] for label in labels if label in by_name}


def to_results(image_id: int, detections: Iterable[Detection], ids: dict[str, int]) -> list[dict]:
    """COCO result records (bbox as x, y, width, height) of one image's detections, unknown classes dropped."""
    return [
        {
            "image_id": image_id,
            "category_id": ids[d.label],
            "bbox": [float(d.box.x1), float(d.box.y1), float(d.box.width), float(d.box.height)],
            "score": float(d.score),
        }
        for d in detections
        if d.label in ids
    ]


def coco_scores(dataset: CocoDataset, results: list[dict]) -> CocoScores:
    """COCOeval bbox mAP@[.5:.95] and mAP@.5 of ``results``, over the categories the detector can name.

    No results at all scores 0 (pycocotools refuses an empty result list).
    """
    if not results:
        return CocoScores(0.0, 0.0)
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress and a table
        found = dataset.coco.loadRes(results)
        evaluation = COCOeval(dataset.coco, found, "bbox")
        evaluation.params.catIds = sorted(set(dataset.category_ids.values()))
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    # COCOeval writes -1 where no category has ground truth: nothing to find, nothing found.
    return CocoScores(max(float(evaluation.stats[0]), 0.0), max(float(evaluation.stats[1]), 0.0))


def evaluate_coco(dataset: CocoDataset, detect: Detect) -> CocoScores:
    """Run ``detect`` (RGB uint8 frame -> detections with COCO class names) on every image and score it.

    Raises:
        ImageReadError: an image named in the file is missing or not decodable (the message names it).
    """
    results: list[dict] = []
    for image_id, path in dataset.frames():
        results += to_results(image_id, detect(read_image(path).pixels), dataset.category_ids)
    return coco_scores(dataset, results)


def _read_annotations(path: Path) -> dict:
    """The parsed file, checked for what COCOeval needs, so a bad file fails here with its name."""
    try:
        content = json.loads(path.read_text())
    except OSError as error:
        raise CocoDatasetError(f"{path}: cannot read ({error.strerror or error})") from None
    except ValueError as error:
        raise CocoDatasetError(f"{path}: not JSON ({error})") from None
    if not isinstance(content, dict) or not {"images", "annotations", "categories"} <= set(content):
        raise CocoDatasetError(f"{path}: not a COCO annotation file (it needs images, annotations and categories)")
    incomplete = [a for a in content["annotations"] if not {"image_id", "category_id", "bbox"} <= set(a)]
    if incomplete:
        raise CocoDatasetError(
            f"{path}: {len(incomplete)} annotations lack image_id, category_id or bbox (first: {incomplete[0]})"
        )
    return content


def _coco_of(content: dict):
    """pycocotools' index of the file; ``area`` and ``iscrowd``, which COCOeval needs and hand-made
    files often leave out, default to the box's area and 0."""
    from pycocotools.coco import COCO

    content = dict(content)
    content["annotations"] = [
        {"iscrowd": 0, **a, "area": a.get("area", float(a["bbox"][2]) * float(a["bbox"][3]))}
        for a in content["annotations"]
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = content
        coco.createIndex()
    return coco
