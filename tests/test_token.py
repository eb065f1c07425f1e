"""`token` writes a learned template into a face's cells and reads nothing of the face."""

from __future__ import annotations

import numpy as np
import torch

from privinfer.client.privatize import feature_patch
from privinfer.obfuscate import create_obfuscator


def test_the_token_does_not_depend_on_the_features_it_replaces():
    token = create_obfuscator("token")
    assert token.trained
    a, b = torch.randn(1, 128, 7, 5), torch.randn(1, 128, 7, 5) * 10
    assert torch.equal(token(a), token(b))
    assert token(a).shape == a.shape and token(a).abs().sum() > 0
    assert token(torch.zeros(1, 128, 3, 9)).shape == (1, 128, 3, 9), "resized to any region's cells"


class _NoHead:
    """A client head that must not run: nothing of the region may be read for a token."""

    def __call__(self, canvases):
        raise AssertionError("the head ran for an obfuscator that reads no features")


def test_a_token_patch_is_made_without_running_the_head_and_is_the_same_for_any_face():
    rng = np.random.default_rng(0)
    regions = [(20, 16, 60, 64)]
    one = feature_patch(
        rng.integers(0, 256, (96, 96, 3), dtype=np.uint8), regions, create_obfuscator("token"), _NoHead()
    )
    two = feature_patch(
        rng.integers(0, 256, (96, 96, 3), dtype=np.uint8), regions, create_obfuscator("token"), _NoHead()
    )
    assert np.array_equal(one.cells, two.cells) and np.array_equal(one.values, two.values)
    assert len(one.cells) == 6 * 6, "the region's cells: rows 2-7, columns 2-7"
