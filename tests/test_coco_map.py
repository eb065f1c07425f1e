"""True mAP on a COCO-format set: a perfect detector scores 1, the real pipeline a valid figure,
a file that shares no class with the detector (or a half-given config) a clear error."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from privinfer import assets
from privinfer.cli import main
from privinfer.errors import ConfigError
from privinfer.evaluate.config import EvaluationConfig
from privinfer.metrics.coco_map import CocoDataset, CocoDatasetError, evaluate_coco, to_results
from privinfer.types import Box, Detection

# Hand-placed boxes. dog.jpg (768 x 576): as in test_models.py; person.jpg (640 x 424): read off the photo.
TRUTH = {
    "dog.jpg": {"dog": Box(128, 220, 320, 540), "bicycle": Box(120, 120, 570, 450), "truck": Box(468, 82, 690, 170)},
    "person.jpg": {"person": Box(190, 100, 275, 375), "horse": Box(405, 140, 600, 345), "dog": Box(63, 263, 202, 343)},
}
# The official COCO ids of these classes, plus one the detector cannot name (left out of the mean).
CATEGORIES = {"person": 1, "bicycle": 2, "truck": 8, "dog": 18, "horse": 19, "license plate": 200}
SIZES = {"dog.jpg": (768, 576), "person.jpg": (640, 424)}


def _write_set(root, categories: dict[str, int]) -> tuple:
    """An annotation file and image folder under ``root``; labels missing from ``categories`` take its first id."""
    images = root / "images"
    images.mkdir(parents=True)
    content: dict = {
        "images": [],
        "annotations": [],
        "categories": [{"id": i, "name": n} for n, i in categories.items()],
    }
    boxes = []
    for image_id, (name, truth) in enumerate(TRUTH.items(), start=1):
        shutil.copy(assets.require(name), images / name)
        width, height = SIZES[name]
        content["images"].append({"id": image_id, "file_name": name, "width": width, "height": height})
        boxes += [
            (image_id, categories.get(label, next(iter(categories.values()))), box) for label, box in truth.items()
        ]
    if "license plate" in categories:
        boxes.append((1, categories["license plate"], Box(600, 400, 640, 420)))
    content["annotations"] = [
        {"id": i, "image_id": image, "category_id": category, "bbox": [box.x1, box.y1, box.width, box.height],
         "area": box.area, "iscrowd": 0}
        for i, (image, category, box) in enumerate(boxes, start=1)
    ]  # fmt: skip
    annotations = root / "instances.json"
    annotations.write_text(json.dumps(content))
    return annotations, images


@pytest.fixture
def coco_set(tmp_path):
    return _write_set(tmp_path, CATEGORIES)


def _oracle(frame: np.ndarray) -> list[Detection]:
    """The ground truth itself, found by the frame's size, plus a class the file does not have."""
    name = next(n for n, (w, h) in SIZES.items() if frame.shape[:2] == (h, w))
    return [Detection(box, label, 0.9) for label, box in TRUTH[name].items()] + [
        Detection(Box(0, 0, 50, 50), "giraffe", 0.99)
    ]


def test_ground_truth_as_detections_scores_one(coco_set):
    dataset = CocoDataset.load(*coco_set)
    assert dataset.category_ids == {"person": 1, "bicycle": 2, "truck": 8, "dog": 18, "horse": 19}
    scores = evaluate_coco(dataset, _oracle)
    assert scores.map == pytest.approx(1.0) and scores.map50 == pytest.approx(1.0)


def test_missed_and_misplaced_boxes_lower_the_figure(coco_set):
    dataset = CocoDataset.load(*coco_set)

    def shifted(frame: np.ndarray) -> list[Detection]:
        # Every box moved by 30 % of its width: IoU about 0.54, a hit at 0.5 only.
        return [Detection(Box(d.box.x1 + 0.3 * d.box.width, d.box.y1, d.box.x2 + 0.3 * d.box.width, d.box.y2),
                          d.label, d.score) for d in _oracle(frame)]  # fmt: skip

    scores = evaluate_coco(dataset, shifted)
    assert scores.map50 == pytest.approx(1.0) and scores.map == pytest.approx(0.1)  # 1 of 10 thresholds
    assert evaluate_coco(dataset, lambda frame: []).map == 0.0


def test_results_are_coco_records():
    ids = {"dog": 18}
    records = to_results(7, [Detection(Box(10, 20, 40, 60), "dog", 0.5), Detection(Box(0, 0, 1, 1), "cat", 0.9)], ids)
    assert records == [{"image_id": 7, "category_id": 18, "bbox": [10.0, 20.0, 30.0, 40.0], "score": 0.5}]


def test_the_real_pipeline_gets_a_high_valid_figure(coco_set):
    from privinfer.evaluate.utility import true_map
    from privinfer.serve import create_pool

    dataset = CocoDataset.load(*coco_set)
    with create_pool("threads", 1) as pool:
        private = true_map(dataset, "unaltered", {}, pool, private=True)
    assert 0.5 <= private.map50 <= 1.0 and 0 < private.map <= private.map50


def test_a_file_without_the_detector_classes_is_a_clear_error(tmp_path):
    annotations, images = _write_set(tmp_path, {"cyclist": 1, "lorry": 2})
    with pytest.raises(CocoDatasetError, match=r"none of its categories \(cyclist, lorry\) is a class the detector"):
        CocoDataset.load(annotations, images)


def test_broken_files_name_themselves(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(CocoDatasetError, match="broken.json: not JSON"):
        CocoDataset.load(broken, tmp_path)
    broken.write_text(json.dumps({"images": []}))
    with pytest.raises(CocoDatasetError, match="not a COCO annotation file"):
        CocoDataset.load(broken, tmp_path)


def test_config_needs_both_paths_and_existing_ones(coco_set, tmp_path):
    annotations, images = coco_set
    config = EvaluationConfig(coco_annotations=annotations, coco_images=images)
    assert config.coco_annotations == str(annotations)  # kept as text, so config.json can hold it
    with pytest.raises(ConfigError, match="coco_annotations is set but coco_images is not"):
        EvaluationConfig(coco_annotations=annotations)
    with pytest.raises(ConfigError, match="coco_images: no such folder: .*nowhere"):
        EvaluationConfig(coco_annotations=annotations, coco_images=tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="coco_annotations: no such file: .*missing.json"):
        EvaluationConfig(coco_annotations=tmp_path / "missing.json", coco_images=images)


def test_cli_rejects_half_a_coco_set_in_one_line(coco_set, tmp_path, capsys):
    code = main(["evaluate", "--level", "tile", "--coco-annotations", str(coco_set[0]),
                 "--out-dir", str(tmp_path / "out")])  # fmt: skip
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "privinfer: error: coco_annotations is set but coco_images is not: the COCO evaluation needs both (or neither)"
    ]
