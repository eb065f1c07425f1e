"""Region attacks see what a server sees of a privatized chunk, and nothing of the face itself."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from privinfer.attack.observe import observe_region
from privinfer.attack.region import (
    RegionAttackTraining,
    RegionView,
    composite,
    region_mask,
    train_region_attacker,
)
from privinfer.data.corpus import CorpusSplit
from privinfer.evaluate.region_run import capped_per_person
from privinfer.metrics.identity import verification_chance
from privinfer.models import nanodet
from privinfer.obfuscate import create_obfuscator
from privinfer.obfuscate.channel_mask import ChannelMask
from privinfer.train.region_chunks import crop_region

REGION = crop_region(128)


@pytest.fixture(scope="module")
def model():
    return nanodet.load_nanodet()


@pytest.fixture(scope="module")
def chunks():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (3, 128, 128, 3), dtype=np.uint8)


def test_the_corpus_region_is_the_face_box_the_corpus_cut_around():
    assert REGION == (14, 14, 114, 114)  # a 128 px crop of a face box grown x1.3


@pytest.mark.parametrize("name", ["unaltered", "channel-mask", "random-mask"])
def test_an_embedding_obfuscators_view_has_the_region_filled_and_a_patch_only_on_its_cells(model, chunks, name):
    options = {"seed": 0} if name == "random-mask" else {}
    view = observe_region(create_obfuscator(name, **options), model, chunks, REGION)
    x1, y1, x2, y2 = REGION
    assert (view.pixels[:, :, y1:y2, x1:x2] == 0).all(), "the face's pixels are filled"
    outside = view.pixels.clone()
    outside[:, :, y1:y2, x1:x2] = -1
    original = torch.from_numpy(chunks).permute(0, 3, 1, 2).float() / 255
    kept = outside >= 0
    assert torch.equal(outside[kept], original[kept]), "the context is sent as it is"
    cells = view.cells()[0, 0].bool()
    assert (view.patch[:, :, ~cells] == 0).all(), "no feature travels outside the region's cells"
    assert view.patch[:, :, cells].abs().sum() > 0
    assert cells[1:15, 1:15].all() and cells.sum() == 14 * 14


def test_the_patch_is_what_float16_keeps_of_the_obfuscated_features(model, chunks):
    view = observe_region(create_obfuscator("unaltered"), model, chunks, REGION)
    with torch.inference_mode():
        z = model.head(nanodet.normalise(list(chunks)))[:, :, 1:15, 1:15]
    assert torch.equal(view.patch[:, :, 1:15, 1:15], z.to(torch.float16).float())


def test_a_pixel_obfuscators_view_has_no_patch(model, chunks):
    view = observe_region(create_obfuscator("blur"), model, chunks, REGION)
    assert (view.patch == 0).all()
    assert view.pixels[:, :, 14:114, 14:114].abs().sum() > 0, "the blurred face is what is sent"


def test_the_attackers_picture_keeps_the_sent_context_and_replaces_only_the_region():
    pixels = torch.rand(2, 3, 128, 128)
    view = RegionView(pixels, torch.zeros(2, 128, 16, 16), REGION)
    rebuilt = torch.full((2, 3, 64, 64), 0.5)
    picture = composite(rebuilt, view)
    inside = region_mask(REGION, 128, 64).bool().expand_as(picture)
    assert (picture[inside] == 0.5).all()
    context = torch.nn.functional.interpolate(pixels, size=(64, 64), mode="area")
    assert torch.equal(picture[~inside], context[~inside])


def test_an_attacker_stops_when_its_validation_loss_stops_improving():
    rng = torch.Generator().manual_seed(0)
    view = RegionView(torch.rand(40, 3, 64, 64, generator=rng), torch.zeros(40, 128, 8, 8), (8, 8, 56, 56))
    settings = RegionAttackTraining(max_steps=400, batch_size=4, lr=0.0, eval_every=2, patience=3)
    trained = train_region_attacker(view, torch.rand(40, 3, 64, 64, generator=rng), settings)
    assert trained.steps < settings.max_steps, "with nothing to learn it stops early"
    assert trained.best_step == 2 and trained.steps == 2 * (1 + settings.patience)


def test_a_trained_attacker_standardises_its_inputs_per_channel():
    rng = torch.Generator().manual_seed(0)
    patch = torch.zeros(20, 128, 8, 8)
    patch[:, 5] = 1000 + torch.randn(20, 8, 8, generator=rng)  # a channel far from unit scale
    view = RegionView(torch.rand(20, 3, 64, 64, generator=rng), patch, (8, 8, 56, 56))
    trained = train_region_attacker(view, torch.rand(20, 3, 64, 64, generator=rng),
                                    RegionAttackTraining(max_steps=2, batch_size=4, eval_every=1))  # fmt: skip
    stacked = view.stacked()
    standardised = (stacked - trained.attacker.mean) / trained.attacker.std
    channel = 192 + 5
    assert abs(float(standardised[:, channel].mean())) < 0.5 and 0.5 < float(standardised[:, channel].std()) < 1.5


def test_the_held_out_persons_are_capped_per_person():
    persons = ["a"] * 10 + ["b"] * 3 + ["c"]
    split = CorpusSplit("faces-test", np.zeros((14, 4, 4, 3), np.uint8), persons, ["s"] * 14,
                        [f"f{i}" for i in range(14)], list(range(14)))  # fmt: skip
    capped = capped_per_person(split, 4, seed=0)
    assert sorted(capped.persons) == ["a"] * 4 + ["b"] * 3 + ["c"]


def test_verification_chance_counts_only_pairs_of_different_persons():
    descriptors = np.array([[0.0, 0.0], [0.1, 0.0], [0.5, 0.0], [5.0, 0.0]])
    # different-person pairs: (0,2) 0.5 < 0.6 yes, (1,2) 0.4 yes, (0,3), (1,3), (2,3): no; (0,1) is one person
    assert verification_chance(descriptors, ["p", "p", "q", "r"]) == pytest.approx(4 / 10)


def test_a_hard_masks_zeroed_channels_cannot_be_undone_and_its_kept_ones_are_sent_as_they_are():
    torch.manual_seed(0)
    z = torch.randn(2, 128, 4, 4)
    hard = ChannelMask()
    sent = hard(z)
    assert torch.equal(hard.undo(sent), sent)
    kept = sent.abs().sum(dim=(2, 3)) > 0
    assert torch.equal(sent[kept], z[kept]) and not kept.all()
