"""Anonymized output: every sensitive region hidden, nothing else changed; `run` and `detect` write it."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from skimage import data

from privinfer.cli import main, options
from privinfer.cli.anonymize import ANONYMIZERS, anonymize
from privinfer.client.privatize import boxes_inside
from privinfer.errors import ConfigError
from privinfer.types import Box

FAST = ["--servers", "2", "--obfuscator", "unaltered", "--sensitive", "faces"]


def _noise(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (120, 160, 3), dtype=np.uint8)


def test_the_cli_choices_are_the_anonymizers():
    assert options.ANONYMIZE == tuple(ANONYMIZERS)


@pytest.mark.parametrize("how", list(ANONYMIZERS))
def test_each_way_hides_every_box_and_leaves_the_rest(how):
    frame = _noise()
    boxes = [Box(10.4, 20.6, 50.2, 70.1), Box(100, 5, 150, 40)]

    out = anonymize(frame, boxes, how)

    inside = np.zeros(frame.shape[:2], bool)
    for x1, y1, x2, y2 in pixel_boxes(boxes, 160, 120):
        inside[y1:y2, x1:x2] = True
    assert np.array_equal(out[~inside], frame[~inside])
    for x1, y1, x2, y2 in pixel_boxes(boxes, 160, 120):
        region, before = out[y1:y2, x1:x2].astype(float), frame[y1:y2, x1:x2].astype(float)
        # Noise has a per-pixel spread of ~74; hidden, the region keeps little of it.
        assert region.std() < 0.5 * before.std() or (how == "fill" and not region.any())
        assert np.abs(region - before).mean() > 30


def pixel_boxes(boxes, width, height):
    return boxes_inside(Box(0, 0, width, height), boxes)


def test_a_box_is_hidden_to_every_pixel_it_touches_and_clipped_to_the_frame():
    frame = _noise()
    out = anonymize(frame, [Box(-5, 2.5, 10.1, 200), Box(170, 0, 180, 10)], "fill")

    changed = np.any(out != frame, axis=2)
    assert not out[2:120, 0:11].any() and changed.sum() == 118 * 11


def test_an_unknown_way_is_a_config_error():
    with pytest.raises(ConfigError, match="--anonymize 'pixelate' is unknown; choose from: blur, fill, mosaic"):
        anonymize(_noise(), [], "pixelate")


def _astronaut(path, width=320, height=240) -> None:
    cv2.imwrite(str(path), cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), (width, height)))


def test_run_writes_the_annotated_and_the_anonymized_frame(tmp_path, capsys):
    photo, out = tmp_path / "astronaut.png", tmp_path / "out"
    _astronaut(photo)

    code = main(
        ["run", str(photo), *FAST, "--out", str(out), "--anonymize", "fill", "--json", str(tmp_path / "r.json")]
    )

    assert code == 0
    assert (out / "astronaut.jpg").is_file()
    hidden = cv2.imread(str(out / "astronaut_anonymized.jpg"))
    original = cv2.imread(str(photo))
    (face,) = json.loads((tmp_path / "r.json").read_text())[0]["sensitive"]
    x1, y1, x2, y2 = pixel_boxes([Box(*face["box"])], 320, 240)[0]
    assert hidden[y1 + 2 : y2 - 2, x1 + 2 : x2 - 2].max() < 40, "the face is filled black (JPEG ringing aside)"
    outside = np.ones((240, 320), bool)
    outside[max(0, y1 - 8) : y2 + 8, max(0, x1 - 8) : x2 + 8] = False
    assert np.abs(hidden.astype(int) - original)[outside].mean() < 4, "the rest is the photo (JPEG loss aside)"
    assert "anonymized (fill)" in capsys.readouterr().out


def test_run_writes_an_anonymized_video_beside_the_annotated_one(tmp_path):
    clip, out = tmp_path / "clip.mp4", tmp_path / "out"
    frame = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), (320, 240))
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10, (320, 240))
    for i in range(4):
        writer.write(np.roll(frame, 4 * i, axis=1))
    writer.release()

    assert main(["run", str(clip), *FAST, "--out", str(out), "--anonymize", "blur"]) == 0

    for name in ("clip.mp4", "clip_anonymized.mp4"):
        written = cv2.VideoCapture(str(out / name))
        assert written.isOpened() and int(written.get(cv2.CAP_PROP_FRAME_COUNT)) == 4, name
        written.release()


def test_anonymize_without_out_is_refused_in_one_line(tmp_path, capsys):
    photo = tmp_path / "astronaut.png"
    _astronaut(photo)

    assert main(["run", str(photo), "--anonymize", "blur"]) == 2
    assert capsys.readouterr().err.strip() == (
        "privinfer: error: --anonymize blur: say where to write the frames with --out DIR"
    )


def test_detect_writes_the_anonymized_image_too(tmp_path):
    photo, out = tmp_path / "astronaut.png", tmp_path / "out"
    _astronaut(photo)

    assert main(["detect", str(photo), "--out", str(out), "--anonymize", "mosaic"]) == 0

    record = json.loads((out / "astronaut.json").read_text())
    x1, y1, x2, y2 = pixel_boxes([Box(*record["sensitive"][0]["box"])], 320, 240)[0]
    hidden = cv2.imread(str(out / "astronaut_anonymized.jpg")).astype(int)
    original = cv2.imread(str(photo)).astype(int)
    assert np.abs(hidden[y1:y2, x1:x2] - original[y1:y2, x1:x2]).mean() > 10
