"""The whole privacy evaluation path, end to end, on the quick corpus (tiny subsets, few steps).

The figures of a quick run mean nothing; this shows that corpus -> training -> attacks ->
utility -> latency -> report runs and writes what it promises.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from privinfer.data.build import BuildOptions, build_corpus
from privinfer.errors import ConfigError
from privinfer.evaluate.config import EvaluationConfig
from privinfer.evaluate.run import run_evaluation
from privinfer.train.config import MaskTrainingConfig
from privinfer.train.run import run_training


def test_quick_train_and_evaluate(tmp_path):
    corpus = tmp_path / "corpus"
    build_corpus(BuildOptions(quick=True, root=corpus))
    weights = run_training(MaskTrainingConfig(quick=True, out_dir=str(tmp_path / "train"), corpus_root=str(corpus)))
    config = EvaluationConfig(quick=True, out_dir=str(tmp_path / "results"), corpus_root=str(corpus))
    # One entry by a label of its own (a baseline setting in a sweep), naming its obfuscator.
    obfuscators = {"unaltered": {}, "random-mask drop=0.5": {"obfuscator": "random-mask", "drop": 0.5, "seed": 0},
                   "channel-mask": {"weights": str(weights)}, "blur": {}}  # fmt: skip
    summary = run_evaluation(replace(config, obfuscators=obfuscators), progress=lambda _: None)

    written = json.loads((tmp_path / "results" / "summary.json").read_text())
    assert set(written) == {"floor", "meta", *obfuscators}
    for name in obfuscators:
        entry = written[name]
        for attack in ("strong", "weak"):
            assert 0 <= entry[attack]["ssim"] <= 1 and entry[attack]["psnr"] > 0
            assert set(entry[attack]["sim"]) == {"mobilenet_v2", "efficientnet_lite0"}
        assert 0 <= entry["map_degradation_pct"] <= 100
    assert written["unaltered"]["map_degradation_pct"] == 0.0, "unaltered must match the unaltered pipeline"
    assert written["random-mask drop=0.5"]["obfuscator"] == "random-mask"
    assert "whitebox" in written["channel-mask"] and "whitebox" not in written["blur"]
    for name in ("report.md", "pareto.png", "reconstructions.png", "config.json", "environment.json"):
        assert (tmp_path / "results" / name).is_file()
    assert "QUICK RUN" in (tmp_path / "results" / "report.md").read_text()
    assert summary["floor"]["strong"]["ssim"] == written["floor"]["strong"]["ssim"]


def test_an_unknown_obfuscator_in_the_config_is_named_before_anything_runs():
    with pytest.raises(ConfigError, match="obfuscators: 'gaussian sigma=9' names unknown obfuscator 'gausian'"):
        EvaluationConfig(obfuscators={"gaussian sigma=9": {"obfuscator": "gausian", "sigma": 9.0}})


def test_quick_patch_training_and_region_evaluation(tmp_path):
    """`privinfer train` (patch-mask) -> `privinfer evaluate` (region level) on the quick corpus:
    every attack, the floor, frame-level utility and the report are written."""
    from privinfer.evaluate.region_config import RegionEvaluationConfig
    from privinfer.evaluate.region_report import floor_ssim
    from privinfer.evaluate.region_run import run_region_evaluation
    from privinfer.obfuscate.patch_mask import PatchMask
    from privinfer.train.patch_mask_training import PatchMaskTrainingConfig
    from privinfer.train.run import run_patch_training, run_token_training
    from privinfer.train.token_training import TokenTrainingConfig

    corpus = tmp_path / "corpus"
    build_corpus(BuildOptions(quick=True, root=corpus))
    weights = run_patch_training(
        PatchMaskTrainingConfig(quick=True, out_dir=str(tmp_path / "train"), corpus_root=str(corpus))
    )
    assert PatchMask(weights).trained
    template = run_token_training(
        TokenTrainingConfig(quick=True, out_dir=str(tmp_path / "token"), corpus_root=str(corpus))
    )
    obfuscators = {"unaltered": {}, "patch-mask": {"weights": str(weights)}, "token": {"weights": str(template)},
                   "blur": {}}  # fmt: skip
    config = RegionEvaluationConfig(quick=True, out_dir=str(tmp_path / "region"), corpus_root=str(corpus),
                                    obfuscators=obfuscators, identity=False)  # fmt: skip
    summary = run_region_evaluation(config, progress=lambda _: None)

    written = json.loads((tmp_path / "region" / "summary.json").read_text())
    assert {"floor", "meta", "frame_utility", "front", *obfuscators} <= set(written)
    assert {"strong", "weak", "inversion", "whitebox"} <= set(written["patch-mask"])
    assert "inversion" not in written["unaltered"] and "whitebox" not in written["blur"]
    for label in obfuscators:
        strong = written[label]["strong"]
        assert 0 <= strong["ssim"] <= 1 and strong["steps"] >= 1
    floor, _ = floor_ssim(written)
    assert floor >= written["floor"]["strong"]["ssim"], "the floor is the best context-only attack"
    assert written["front"]["fill"]["ssim"] == floor, "fill sends nothing of the face: it is the floor"
    if written["front"]["unaltered"]["ssim"] > floor:  # a quick run's attackers may not get that far
        assert written["front"]["fill"]["ssim_gap"] == 0.0 and written["front"]["unaltered"]["ssim_gap"] == 1.0
    assert written["token"]["context_only"] and not written["patch-mask"]["context_only"]
    assert set(written["frame_utility"]["obfuscators"]) == {"fill", *obfuscators}
    for name in ("report.md", "pareto.png", "reconstructions.png", "config.json"):
        assert (tmp_path / "region" / name).is_file()
    assert (tmp_path / "region" / "summary.partial.json").exists(), "finished obfuscators are kept for the next run"
    assert summary["floor"]["strong"]["ssim"] == written["floor"]["strong"]["ssim"]


def test_the_region_evaluation_needs_unaltered_first():
    from privinfer.evaluate.region_config import RegionEvaluationConfig

    with pytest.raises(ConfigError, match="'unaltered' must come first"):
        RegionEvaluationConfig(obfuscators={"blur": {}, "unaltered": {}})
