"""Training the channel mask, the attacks and the image metrics, on small real data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data as skdata

from privinfer.attack.learned import AttackTraining, reconstruct, train_attacker
from privinfer.attack.observe import observe
from privinfer.attack.whitebox import whitebox_reconstruct
from privinfer.metrics.image_similarity import psnr, ssim
from privinfer.obfuscate import create_obfuscator
from privinfer.run_record import load_config
from privinfer.train.channel_mask_training import train_channel_mask
from privinfer.train.chunks import random_crops, to_unit
from privinfer.train.config import MaskTrainingConfig
from privinfer.train.distill import distillation_loss


def test_ssim_and_psnr_use_unit_range():
    image = skdata.astronaut()[:64, :64] / 255.0
    assert ssim(image, image) == pytest.approx(1.0)
    noisy = np.clip(image + np.random.default_rng(0).normal(0, 0.1, image.shape), 0, 1)
    assert 0.2 < ssim(noisy, image) < 0.9
    assert 15 < psnr(noisy, image) < 25  # ~20 dB for sigma 0.1 at peak 1.0; a 255 peak would give ~68
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        ssim(image * 255, image)


def test_distillation_loss_is_zero_only_for_the_teacher(nanodet_model):
    x = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        z = nanodet_model.head(x)
        teacher = nanodet_model.tail(z)
        masked = nanodet_model.tail(z * 0.2)
    own = distillation_loss(teacher, teacher)
    assert float(distillation_loss(masked, teacher)) > float(own) + 1e-3


@pytest.fixture(scope="module")
def chunks():
    photos = [skdata.astronaut(), skdata.chelsea(), skdata.coffee(), skdata.rocket()]
    return random_crops(photos, 128, 24, seed=0)


def test_mask_training_runs_checkpoints_and_resumes(tmp_path, chunks):
    config = MaskTrainingConfig(steps=4, batch_size=2, scene_batch_size=1, checkpoint_every=2, out_dir=str(tmp_path))
    weights = train_channel_mask(config, chunks, [skdata.coffee()])
    assert weights.is_file() and (tmp_path / "checkpoint.pt").is_file() and (tmp_path / "config.json").is_file()
    rows = (tmp_path / "losses.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 4
    longer = MaskTrainingConfig(**{**config.__dict__, "steps": 6})
    train_channel_mask(longer, chunks, [skdata.coffee()])  # resumes at step 4
    rows = (tmp_path / "losses.csv").read_text().strip().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["0", "1", "2", "3", "4", "5"]
    mask = create_obfuscator("channel-mask", weights=weights)
    assert mask.trained


def test_config_file_and_overrides(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("alpha = 2.5\nsteps = 10\n")
    config = load_config(MaskTrainingConfig, path, {"steps": 20, "seed": None})
    assert config.alpha == 2.5 and config.steps == 20 and config.seed == 0
    path.write_text("alpah = 1\n")
    from privinfer.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown config keys \\['alpah'\\]"):
        load_config(MaskTrainingConfig, path, {})


def test_learned_attacker_beats_its_start_on_unaltered_features(nanodet_model, chunks):
    seen = observe(create_obfuscator("unaltered"), nanodet_model, chunks)
    assert seen.shape == (24, 128, 16, 16)
    targets = torch.nn.functional.interpolate(to_unit(chunks), size=(64, 64), mode="area")
    attacker = train_attacker(seen, targets, AttackTraining(steps=40, batch_size=8))
    rebuilt = reconstruct(attacker, seen, 64)
    assert rebuilt.shape == (24, 3, 64, 64)
    errors = (rebuilt - targets).abs().mean()
    assert float(errors) < float((0.5 - targets).abs().mean())


def test_pixel_obfuscators_are_observed_as_images(nanodet_model, chunks):
    seen = observe(create_obfuscator("blur"), nanodet_model, chunks[:3])
    assert seen.shape == (3, 3, 128, 128) and float(seen.max()) <= 1.0


def test_whitebox_attack_moves_towards_the_observation(nanodet_model, chunks):
    obfuscator = create_obfuscator("unaltered")
    seen = observe(obfuscator, nanodet_model, chunks[:1])
    from privinfer.attack.whitebox import unit_to_model_input

    def mismatch(images):
        with torch.no_grad():
            return float((obfuscator(nanodet_model.head(unit_to_model_input(images))) - seen).pow(2).mean())

    start = whitebox_reconstruct(nanodet_model, obfuscator, seen, 128, steps=0)
    after = whitebox_reconstruct(nanodet_model, obfuscator, seen, 128, steps=30)
    assert mismatch(after) < 0.7 * mismatch(start)
