"""`patch-mask`: each channel of a sensitive region's patch is sent as it is, or exactly zero."""

from __future__ import annotations

import pytest
import torch

from privinfer.errors import ConfigError
from privinfer.obfuscate import create_obfuscator
from privinfer.obfuscate.patch_mask import PatchMask, straight_through_gate


def test_a_straight_through_gate_is_hard_forward_and_the_sigmoids_gradient_backward():
    logits = torch.tensor([-2.0, -0.1, 0.0, 0.3, 4.0], requires_grad=True)
    gate = straight_through_gate(logits)
    assert torch.allclose(gate, torch.tensor([0.0, 0.0, 1.0, 1.0, 1.0]), atol=1e-6)
    gate.sum().backward()
    sigmoid = torch.sigmoid(logits.detach())
    assert torch.allclose(logits.grad, sigmoid * (1 - sigmoid))


def _trained(tmp_path, pool: bool, bias: torch.Tensor) -> PatchMask:
    """A generator whose output layer keeps exactly the channels where ``bias`` > 0."""
    mask = PatchMask("untrained", pool=pool)
    state = mask.generator.state_dict()
    state["net.2.weight"] = torch.zeros_like(state["net.2.weight"])
    state["net.2.bias"] = bias
    path = tmp_path / "w.pt"
    torch.save({"mask_generator": state, "pool": pool}, path)
    return PatchMask(path, pool=pool)


@pytest.mark.parametrize("pool", [False, True])
def test_removed_channels_are_exactly_zero_and_kept_ones_are_not_rescaled(tmp_path, pool):
    bias = torch.full((128,), -5.0)
    bias[[3, 50, 77]] = 5.0
    mask = _trained(tmp_path, pool, bias)
    z = torch.randn(2, 128, 5, 6)
    sent = mask(z)
    assert (sent[:, [c for c in range(128) if c not in (3, 50, 77)]] == 0).all()
    expected = z.mean(dim=(2, 3), keepdim=True).expand_as(z) if pool else z
    assert torch.equal(sent[:, [3, 50, 77]], expected[:, [3, 50, 77]])


def test_weights_trained_for_the_other_pool_setting_are_refused(tmp_path):
    bias = torch.zeros(128)
    _trained(tmp_path, True, bias)
    with pytest.raises(ConfigError, match="trained with pool=True, not pool=False"):
        PatchMask(tmp_path / "w.pt", pool=False)


def test_the_shipped_weights_load_by_name():
    mask = create_obfuscator("patch-mask")
    assert mask.trained
    pooled = create_obfuscator("patch-mask", pool=True)
    assert pooled.trained and pooled.pool
