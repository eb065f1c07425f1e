"""`privinfer run` end to end: images, folders and videos in, annotated files and JSON out.

Each CLI call builds a Pipeline (models load in a second or two), so inputs are kept small.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from skimage import data

from privinfer import assets
from privinfer.cli import main
from privinfer.cli.runner import Frame, SkippedFrames, capture_frames
from privinfer.cli.sent_view import zoom_for
from privinfer.obfuscate import available_obfuscators
from privinfer.pipeline import processed_size

FAST = ["--servers", "2", "--obfuscator", "unaltered", "--sensitive", "faces"]
SCHEMA = {"source", "frame", "detections", "tiles", "sensitive", "timings_ms"}


def _astronaut_bgr(width: int = 320, height: int = 240) -> np.ndarray:
    return cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), (width, height))


def _write_video(path, frames: int, fourcc: str = "mp4v") -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, (320, 240))
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.roll(_astronaut_bgr(), 4 * i, axis=1))
    writer.release()


def _json_lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_dog_image_gives_schema_json_annotated_image_and_summary(tmp_path, capsys):
    dog = assets.require("dog.jpg")
    out, result_file = tmp_path / "out", tmp_path / "results.json"

    code = main(["run", str(dog), *FAST, "--out", str(out), "--json", str(result_file)])

    assert code == 0
    records = json.loads(result_file.read_text())
    assert isinstance(records, list) and len(records) == 1
    record = records[0]
    assert SCHEMA <= set(record)
    assert record["source"] == str(dog) and record["frame"] == 0
    assert record["detections"], "the dog photo has objects the task model finds"
    for detection in record["detections"]:
        assert set(detection) == {"box", "label", "score"} and len(detection["box"]) == 4
    for tile in record["tiles"]:
        assert set(tile) == {
            "box",
            "treatment",
            "obfuscator",
            "server",
            "bytes",
            "payload",
            "patch_cells",
            "answer_bytes",
        }
        assert tile["treatment"] in {"raw", "privatized", "discarded"}
    assert {"detect", "obfuscate", "servers", "merge", "total"} <= set(record["timings_ms"])

    annotated = cv2.imread(str(out / "dog.jpg"))
    original = cv2.imread(str(dog))
    assert annotated is not None and annotated.shape == original.shape
    assert np.abs(annotated.astype(int) - original).mean() > 1, "boxes and tile shading were drawn"
    sent = cv2.imread(str(out / "dog_sent.jpg"))  # what the servers saw: at the working size, enlarged
    width, height = processed_size(original.shape[1], original.shape[0], 416)
    zoom = zoom_for(width, height)
    assert sent is not None and sent.shape == (height * zoom, width * zoom, 3)

    printed = capsys.readouterr().out
    assert "median ms" in printed and "p95 ms" in printed and "frames processed: 1" in printed
    assert "bytes sent:" in printed


def test_video_gives_one_json_line_per_frame_in_order_and_an_annotated_video(tmp_path, capsys):
    clip, out, result_file = tmp_path / "clip.mp4", tmp_path / "out", tmp_path / "frames.jsonl"
    _write_video(clip, 6)

    code = main(["run", str(clip), *FAST, "--out", str(out), "--json", str(result_file)])

    assert code == 0
    lines = _json_lines(result_file)
    assert [line["frame"] for line in lines] == list(range(6))
    assert all(SCHEMA <= set(line) and line["source"] == str(clip) for line in lines)
    # The astronaut's face must be found and its tiles privatized: nothing of it goes out raw.
    assert all(line["sensitive"] for line in lines)
    assert all(any(t["treatment"] == "privatized" for t in line["tiles"]) for line in lines)

    for name in ("clip.mp4", "clip_sent.mp4"):
        written = cv2.VideoCapture(str(out / name))
        assert written.isOpened() and int(written.get(cv2.CAP_PROP_FRAME_COUNT)) == 6, name
        written.release()
    assert "fps" in capsys.readouterr().out


def test_a_corrupt_video_frame_is_skipped_with_an_error_line_and_the_rest_processed(tmp_path, capsys):
    clip, result_file = tmp_path / "clip.avi", tmp_path / "frames.jsonl"
    _write_video(clip, 6, fourcc="MJPG")
    payload = bytearray(clip.read_bytes())
    starts = [i for i in range(len(payload) - 1) if payload[i] == 0xFF and payload[i + 1] == 0xD8]
    assert len(starts) == 6, "one JPEG per frame"
    payload[starts[2] : starts[2] + 2000] = bytes(2000)  # wipe frame 2's JPEG header and data
    clip.write_bytes(bytes(payload))

    code = main(["run", str(clip), *FAST, "--json", str(result_file)])

    assert code == 2
    lines = _json_lines(result_file)
    assert [line["frame"] for line in lines] == list(range(6)), "every frame has a line, in order"
    assert "error" in lines[2] and "detections" not in lines[2]
    assert all("detections" in line for i, line in enumerate(lines) if i != 2)
    assert f"{clip}: frame 2 skipped" in capsys.readouterr().err


def test_bad_inputs_fail_with_a_line_each_while_the_valid_one_is_processed(tmp_path, capsys):
    good = tmp_path / "good.png"
    cv2.imwrite(str(good), _astronaut_bgr())
    missing = tmp_path / "missing.jpg"
    not_image = tmp_path / "notes.txt"
    not_image.write_text("not an image")
    not_video = tmp_path / "fake.mp4"
    not_video.write_text("not a video either")
    out, result_file = tmp_path / "out", tmp_path / "results.json"

    inputs = [str(missing), str(good), str(not_image), str(not_video)]
    code = main(["run", *inputs, *FAST, "--out", str(out), "--json", str(result_file)])

    assert code == 2
    printed = capsys.readouterr()
    err_lines = printed.err.splitlines()
    assert any(str(missing) in line and "no such file" in line for line in err_lines)
    assert any(str(not_image) in line and "not a readable image" in line for line in err_lines)
    assert any(str(not_video) in line and "not a readable video" in line for line in err_lines)
    # A video among the inputs makes the file JSON lines; each input has its record, in order.
    records = _json_lines(result_file)
    assert [r["source"] for r in records] == inputs
    assert all("error" in records[i] for i in (0, 2, 3))
    assert SCHEMA <= set(records[1])
    assert (out / "good.jpg").is_file() and not (out / "notes.jpg").exists() and not (out / "fake.mp4").exists()
    assert "failed inputs: 3" in printed.out


def test_folder_images_run_sorted_each_as_its_own_sequence(tmp_path):
    folder = tmp_path / "shots"
    folder.mkdir()
    cv2.imwrite(str(folder / "a_face.png"), _astronaut_bgr())
    cv2.imwrite(str(folder / "b_no_face.png"), np.full((240, 320, 3), 90, np.uint8))
    cv2.imwrite(str(folder / "c_extra.png"), _astronaut_bgr())
    (folder / "readme.txt").write_text("ignored: not an image suffix")
    result_file = tmp_path / "results.json"

    code = main(["run", str(folder), *FAST, "--max-frames", "2", "--json", str(result_file)])

    assert code == 0
    records = json.loads(result_file.read_text())
    assert [r["source"] for r in records] == [str(folder / "a_face.png"), str(folder / "b_no_face.png")]
    assert records[0]["sensitive"], "the astronaut's face is found"
    # Held sensitive boxes are for frames of one video: the face must not carry into the next image.
    assert records[1]["sensitive"] == []
    assert all(t["treatment"] == "raw" for t in records[1]["tiles"])


def test_unknown_obfuscator_names_the_valid_ones(tmp_path, capsys):
    dog = assets.require("dog.jpg")

    code = main(["run", str(dog), "--obfuscator", "no-such-thing", "--sensitive", "faces"])

    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no-such-thing" in err
    assert all(name in err for name in available_obfuscators())


@pytest.mark.parametrize(
    ("roi_args", "expected"),
    [
        (["--roi", "1,2,3"], "must be four numbers"),
        (["--roi", "a,b,c,d"], "must be four numbers"),
        (["--roi", "10,10,20,20", "--roi-mode", "fovea"], "'boxes' RoI mode"),
        (["--roi", "50,50,10,10"], "is empty"),
    ],
)
def test_bad_roi_exits_2_with_a_clear_message(roi_args, expected, tmp_path, capsys):
    code = main(["run", str(assets.require("dog.jpg")), "--sensitive", "", *roi_args])

    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("privinfer: error:") and expected in err


class _FakeCapture:
    """OpenCV's read() protocol over a script: True decodes a frame, False fails that read."""

    def __init__(self, script: list[bool]) -> None:
        self.script = list(script)

    def read(self):
        if not self.script:
            return False, None
        ok = self.script.pop(0)
        return (True, np.zeros((4, 4, 3), np.uint8)) if ok else (False, None)


def test_capture_frames_reports_mid_stream_and_trailing_misses_and_keeps_indices():
    items = list(capture_frames(_FakeCapture([True, False, True, True, False, False]), "v", announced=6))

    assert [(type(i).__name__, i.index if isinstance(i, Frame) else i.first) for i in items] == [
        ("Frame", 0),
        ("SkippedFrames", 1),
        ("Frame", 2),
        ("Frame", 3),
        ("SkippedFrames", 4),
    ]
    assert items[1].count == 1 and items[-1].count == 2


def test_capture_frames_without_a_frame_count_ends_at_the_first_failed_read():
    items = list(capture_frames(_FakeCapture([True, True, False, True]), "webcam 0", announced=0))

    assert [i.index for i in items] == [0, 1]
    assert not any(isinstance(i, SkippedFrames) for i in items)


def test_a_port_that_refuses_is_reported_at_once(capsys):
    import socket

    with socket.socket() as probe:  # a port nothing listens on: the connection is refused
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"

    code = main(["run", str(assets.require("dog.jpg")), "--servers", address])

    assert code == 2  # refused before any model loads or any frame is read
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"privinfer: error: {address}: connection refused")


def test_a_missing_camera_is_one_line_without_opencv_noise(capfd):
    code = main(["run", "9", *FAST])

    assert code == 2
    captured = capfd.readouterr()  # file-descriptor level: OpenCV's native log lines would show here
    err = [line for line in captured.err.splitlines() if line.strip()]
    assert err == ["privinfer: error: 9: no camera could be opened at webcam index 9"]
    assert "WARN" not in captured.out + captured.err


def test_bytes_sent_are_compared_with_the_frames_at_the_processed_size(tmp_path, capsys):
    dog = assets.require("dog.jpg")  # 768 x 576: processed at 416 x 312 by default

    code = main(["run", str(dog), *FAST, "--json", str(tmp_path / "r.json")])

    assert code == 0
    sent = sum(t["bytes"] for t in json.loads((tmp_path / "r.json").read_text())[0]["tiles"])
    processed = 416 * 312 * 3
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("bytes sent:"))
    assert line == (
        f"bytes sent: {sent:,} = {100 * sent / processed:.1f}% of the frames' {processed:,} bytes as processed "
        f"(long side at most 416 px, RGB 8-bit; {768 * 576 * 3:,} bytes at the resolution read)"
    )


def test_processed_size_follows_the_working_size():
    assert processed_size(768, 576, 416) == (416, 312)
    assert processed_size(300, 200, 416) == (300, 200)
    assert processed_size(1920, 1080, None) == (1920, 1080)


def test_run_says_which_sensitive_detectors_protect_the_frames(tmp_path, capsys):
    assert main(["run", str(assets.require("dog.jpg")), *FAST, "--thresh", "0.3"]) == 0
    assert "sensitive detectors: faces (threshold 0.3), boxes grown x1.3" in capsys.readouterr().out.splitlines()
