"""ImageNet embedders for the semantic-similarity metric, on real photographs from scikit-image."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch
import torchvision

from privinfer import assets
from privinfer.errors import AssetMissingError, ConfigError
from privinfer.metrics.embedders import (
    available_embedders,
    create_embedder,
    imagenet_categories,
    semantic_similarity,
)

DEFAULT_EMBEDDERS = ["mobilenet_v2", "efficientnet_lite0"]
_ASSET_OF = {"mobilenet_v2": "mobilenet-v2", "efficientnet_lite0": "efficientnet-lite0"}
CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat


def as_batch(image: np.ndarray) -> torch.Tensor:
    """uint8 HxW or HxWx3 -> float (1, 3, H, W) in [0, 1]."""
    rgb = np.stack([image] * 3, axis=-1) if image.ndim == 2 else image
    return torch.from_numpy(rgb).permute(2, 0, 1).float().div(255).unsqueeze(0)


@pytest.fixture(scope="module", params=DEFAULT_EMBEDDERS)
def embedder(request):
    name = request.param
    if not assets.verify(_ASSET_OF[name]):
        pytest.skip(f"asset {_ASSET_OF[name]} not cached; run: privinfer assets fetch {_ASSET_OF[name]}")
    return create_embedder(name)


@pytest.fixture(scope="module")
def cat() -> torch.Tensor:
    return as_batch(skimage.data.chelsea())


@pytest.fixture(scope="module")
def camera() -> torch.Tensor:
    return as_batch(skimage.data.camera())


def test_registry_lists_all_and_rejects_unknown_names():
    assert set(available_embedders()) >= {"mobilenet_v2", "efficientnet_lite0", "resnet50", "vgg16"}
    with pytest.raises(ConfigError, match="unknown embedder 'alexnet'.*mobilenet_v2"):
        create_embedder("alexnet")


def test_categories_are_imagenet_1k():
    categories = imagenet_categories()
    assert len(categories) == 1000
    assert categories[285] == "Egyptian cat"


def test_cat_photo_is_classified_as_a_cat(embedder, cat):
    with torch.inference_mode():
        top = int(embedder.logits(cat).argmax(dim=1))
    assert top in CAT_CLASSES, f"{embedder.name} says {imagenet_categories()[top]}"


def test_features_are_pooled_vectors(embedder, cat, camera):
    with torch.inference_mode():
        features = embedder.features(torch.cat([cat[..., :300, :300], camera[..., :300, :300]]))
    assert features.shape == (2, 1280)
    assert torch.isfinite(features).all()


def test_similarity_is_one_for_the_same_image_and_lower_for_a_different_one(embedder, cat, camera):
    with torch.inference_mode():
        same = semantic_similarity(embedder, cat, cat.clone())
        different = semantic_similarity(embedder, cat, camera)
        # A mildly degraded copy keeps its meaning: closer than an unrelated photo.
        noisy = (cat + 0.05 * torch.randn(cat.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
        degraded = semantic_similarity(embedder, cat, noisy)
    assert same.shape == (1,)
    assert float(same) == pytest.approx(1.0, abs=1e-5)
    # Post-ReLU features are non-negative, so unrelated photos still score above 0 (about 0.5 for
    # MobileNetV2, 0.15 for EfficientNet-Lite0); noise of sigma 0.05 keeps it above 0.9.
    assert float(different) < 0.7
    assert float(different) + 0.3 < float(degraded) < 1.0


def test_similarity_is_differentiable_with_respect_to_the_image(embedder, cat, camera):
    guess = camera[..., :256, :256].clone().requires_grad_(True)
    semantic_similarity(embedder, guess, cat).sum().backward()
    assert guess.grad is not None and guess.grad.abs().sum() > 0
    assert all(p.grad is None for p in embedder.model.parameters())


def test_wrong_input_is_rejected_with_the_shape(embedder):
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\).*\(3, 8, 8\)"):
        embedder.features(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="pairs"):
        semantic_similarity(embedder, torch.rand(2, 3, 8, 8), torch.rand(1, 3, 8, 8))


@pytest.mark.parametrize(("name", "filename"), [("resnet50", "resnet50-0676ba61.pth"), ("vgg16", "vgg16-397923af.pth")])
def test_hub_embedders_without_cached_weights_say_which_file_to_put_where(monkeypatch, tmp_path, name, filename):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(AssetMissingError) as raised:
        create_embedder(name)
    message = str(raised.value)
    assert "\n" not in message
    assert filename in message
    assert str(tmp_path / "hub" / "checkpoints") in message


def test_resnet50_loads_a_checkpoint_from_the_hub_cache(monkeypatch, tmp_path, cat):
    # Random weights in the V2 file name: checks the lookup, the strict load and the feature size.
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), checkpoints / "resnet50-11ad3fa6.pth")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    embedder = create_embedder("resnet50")
    with torch.inference_mode():
        assert embedder.features(cat).shape == (1, 2048)
        assert embedder.logits(cat).shape == (1, 1000)
