"""`privinfer bench --quick`: every section but the testbed's runs and writes what it promises.

The figures of a quick run mean nothing (a frame or two, local thread servers); this checks the
path end to end, that the summary has its keys, and that privacy is quoted, never made up.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from privinfer.bench import available, select
from privinfer.bench.alternatives import strips
from privinfer.bench.frames import frame_with_faces
from privinfer.bench.privacy import load_privacy_reference
from privinfer.cli import main
from privinfer.errors import ConfigError

SUMMARY_KEYS = {
    "machine", "device", "privacy_overhead_ratio", "obfuscation_ms_per_frame", "speedup_vs_one_server",
    "latency_over_ideal", "fps_vtest", "alternatives",
}  # fmt: skip


def test_quick_bench_writes_summary(tmp_path):
    # A privacy evaluation that scored blur only: its SSIM must be quoted, every other one left null.
    evaluation = tmp_path / "evaluation.json"
    evaluation.write_text(json.dumps({"blur": {"strong": {"ssim": 0.25}}, "meta": {"config": {}}}))
    out = tmp_path / "bench"
    code = main(["bench", "--quick", "--frames", "1", "--skip", "scaling", "--backend", "threads", "--out", str(out),
                 "--privacy-summary", str(evaluation)])  # fmt: skip
    assert code == 0

    summary = json.loads((out / "summary.json").read_text())
    assert SUMMARY_KEYS <= set(summary)
    assert summary["device"] == "cpu" and summary["quick"] is True
    assert 0 < summary["privacy_overhead_ratio"] < 1000 and summary["fps_vtest"] > 0
    assert summary["speedup_vs_one_server"] is None, "the testbed section was skipped"
    alternatives = summary["alternatives"]
    assert {"unprotected-whole-frame", "naive-split-2", "deface-blur", "privinfer-channel-mask"} <= set(alternatives)
    for name, row in alternatives.items():
        assert row["latency_ms"] > 0 and row["bytes"] > 0, name
        assert 0 <= row["map_vs_unprotected"] <= 1, name
    assert alternatives["unprotected-whole-frame"]["map_vs_unprotected"] == 1.0, "the reference matches itself"
    assert alternatives["deface-blur"]["strong_ssim"] == 0.25 and alternatives["privinfer-blur"]["strong_ssim"] == 0.25
    assert alternatives["privinfer-channel-mask"]["strong_ssim"] is None, "no figure for it: null, not invented"
    assert alternatives["unprotected-whole-frame"]["strong_ssim"] is None
    load = summary["load"]  # real `privinfer serve` processes and client stream processes, a second each
    assert set(load["streams"]) == {"1", "2"} and load["saturation"]
    for count, figures in load["streams"].items():
        assert figures["total_fps"] > 0 and figures["lost"] == 0 and figures["errors"] == 0, count
    assert all(rss > 100 for run in load["server_rss_mib"].values() for rss in run["start"] + run["end"])

    for section in set(available()) - {"scaling"}:
        assert (out / f"{section}.json").is_file(), section
    assert not (out / "scaling.json").exists()
    markdown = (out / "summary.md").read_text()
    assert "+4.7 ms" in markdown and "quick run" in markdown
    for plot in ("latency.png", "alternatives.png", "roi.png", "growth.png"):
        assert (out / plot).stat().st_size > 0 and f"]({plot})" in markdown

    # Refreshing one section keeps the others' figures in the summary, named as earlier ones.
    assert main(["bench", "--quick", "--frames", "1", "--only", "overhead", "--backend", "threads",
                 "--out", str(out)]) == 0  # fmt: skip
    again = json.loads((out / "summary.json").read_text())
    assert again["sections"] == ["overhead"] and again["alternatives"] == alternatives
    assert set(again["earlier_sections"]) == set(available()) - {"scaling", "overhead"}
    assert "not measured by this run" in (out / "summary.md").read_text()


def test_sections_are_chosen_by_name():
    assert [s.name for s in select(["alternatives", "latency"])] == ["latency", "alternatives"]
    assert "scaling" not in [s.name for s in select(skip=["scaling"])]
    with pytest.raises(ConfigError, match="unknown benchmark section 'latncy'"):
        select(["latncy"])
    assert main(["bench", "--only", "latncy"]) == 2


def test_privacy_reference_without_evaluation(tmp_path):
    reference = load_privacy_reference(tmp_path / "missing.json")
    assert reference.source is None and reference.ssim("blur") is None
    assert reference.options("gaussian") == {"sigma": 1.0, "seed": 0}  # the evaluation's defaults


def test_equal_strips_and_pasted_faces():
    boxes = strips(416, 312, 3)
    assert [b.x1 for b in boxes] == [0, 139, 277] and boxes[-1].x2 == 416 and all(b.height == 312 for b in boxes)

    frame, faces = frame_with_faces(np.zeros((480, 640, 3), np.uint8), 20)
    assert len(faces) == 20 and all(frame[int(b.y1) : int(b.y2), int(b.x1) : int(b.x2)].any() for b in faces)

    def disjoint(a, b):
        return a.x2 <= b.x1 or b.x2 <= a.x1 or a.y2 <= b.y1 or b.y2 <= a.y1

    assert all(disjoint(a, b) for i, a in enumerate(faces) for b in faces[i + 1 :])
    assert all(0 <= b.x1 and b.x2 <= 640 and 0 <= b.y1 and b.y2 <= 480 for b in faces)
