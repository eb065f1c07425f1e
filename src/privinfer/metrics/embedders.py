"""ImageNet CNN feature extractors for the semantic-similarity privacy metric.

The metric asks whether a reconstructed image *means* the same as the original to a classifier
trained on ImageNet: the cosine similarity of the two images' pooled penultimate CNN features.
Build an embedder by name (`create_embedder("mobilenet_v2")`); `available_embedders()` lists the names.

Weights are never downloaded. The defaults come from privinfer's asset cache (`privinfer assets
fetch mobilenet-v2 efficientnet-lite0`); `resnet50` and `vgg16` use torchvision's checkpoint files
only if the user already has them in the torch hub cache.

Gradients flow through `features` and `logits` (nothing runs under `torch.no_grad`) so that attacks
can optimise an image against an embedder; the model's own parameters are frozen. Wrap calls in
`torch.inference_mode()` when only the numbers are needed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from functools import cache
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from privinfer import assets
from privinfer.errors import AssetMissingError, ConfigError

INPUT_SIZE = 224
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Embedder(ABC):
    """An ImageNet classifier split into a feature extractor and its final linear layer.

    Holds the model in eval mode, parameters frozen, on `device`. Subclasses set `mean` and `std`
    (the normalisation the weights were trained with) and implement `build`, `_pooled` and `_classify`.
    """

    name: str = ""
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD

    def __init__(self, model: nn.Module, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval().requires_grad_(False)
        self._mean = torch.tensor(self.mean, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(self.std, device=self.device).view(1, 3, 1, 1)

    @classmethod
    @abstractmethod
    def build(cls, device: torch.device) -> Embedder:
        """Load the weights and return the embedder on `device`.

        Raises:
            AssetMissingError: the weights file is not on this machine.
        """

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Pooled penultimate features, (N, D), of float RGB images (N, 3, H, W) in [0, 1].

        Images are resized (antialiased bilinear, aspect ratio not kept) to 224 x 224 first.
        Differentiable with respect to `images`.

        Raises:
            ValueError: `images` is not a (N, 3, H, W) floating-point tensor.
        """
        return self._pooled(self._prepare(images))

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """ImageNet-1k class scores, (N, 1000), of the same input as `features`."""
        return self._classify(self.features(images))

    def _prepare(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 3 or not images.is_floating_point():
            raise ValueError(
                f"embedder '{self.name}' takes float RGB images shaped (N, 3, H, W) in [0, 1]; "
                f"got {images.dtype} {tuple(images.shape)}"
            )
        images = images.to(device=self.device, dtype=torch.float32)
        resized = F.interpolate(images, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", antialias=True)
        return (resized - self._mean) / self._std

    @abstractmethod
    def _pooled(self, normalised: torch.Tensor) -> torch.Tensor:
        """(N, D) penultimate features of normalised 224 x 224 images."""

    @abstractmethod
    def _classify(self, features: torch.Tensor) -> torch.Tensor:
        """(N, 1000) logits from `_pooled`'s features."""


_REGISTRY: dict[str, Callable[[torch.device], Embedder]] = {}


def register(name: str) -> Callable[[type[Embedder]], type[Embedder]]:
    """Class decorator: make an `Embedder` subclass buildable by `create_embedder(name)`."""

    def decorate(cls: type[Embedder]) -> type[Embedder]:
        cls.name = name
        _REGISTRY[name] = cls.build
        return cls

    return decorate


def available_embedders() -> list[str]:
    return sorted(_REGISTRY)


def create_embedder(name: str, device: str | torch.device = "cpu") -> Embedder:
    """Build an embedder by registry name, weights loaded, on `device`.

    Raises:
        ConfigError: the name is unknown (the message lists the valid ones).
        AssetMissingError: the weights file is not on this machine (the message says where to put it).
    """
    try:
        build = _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown embedder '{name}'; choose from: {', '.join(available_embedders())}") from None
    return build(torch.device(device))


def semantic_similarity(embedder: Embedder, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine similarity, (N,), of the features of a[i] and b[i]; 1 means the same to the CNN.

    `a` and `b` are float RGB (N, 3, H, W) in [0, 1]; their sizes may differ. Differentiable.

    Raises:
        ValueError: the batches differ in length or are not RGB image tensors.
    """
    if len(a) != len(b):
        raise ValueError(f"semantic_similarity compares pairs: got {len(a)} and {len(b)} images")
    return F.cosine_similarity(embedder.features(a), embedder.features(b), dim=1)


@cache
def imagenet_categories() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names in logit order (read from torchvision, no download)."""
    return tuple(torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V1.meta["categories"])


def _load_strict(model: nn.Module, path: Path) -> nn.Module:
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    return model


def _hub_checkpoint(embedder: str, filenames: tuple[str, ...]) -> Path:
    """The first of torchvision's checkpoint files found in the torch hub cache.

    Raises:
        AssetMissingError: none is there; privinfer never downloads them.
    """
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    for filename in filenames:
        if (folder / filename).is_file():
            return folder / filename
    raise AssetMissingError(
        f"embedder '{embedder}' needs torchvision's ImageNet weights, which privinfer does not download: "
        f"put {' or '.join(filenames)} into {folder}"
    )


@register("mobilenet_v2")
class MobileNetV2Embedder(Embedder):
    """torchvision MobileNetV2, IMAGENET1K_V1 weights from asset `mobilenet-v2`; 1280-d features."""

    @classmethod
    def build(cls, device: torch.device) -> Embedder:
        model = _load_strict(torchvision.models.mobilenet_v2(weights=None), assets.require("mobilenet-v2"))
        return cls(model, device)

    def _pooled(self, normalised: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(self.model.features(normalised), 1).flatten(1)

    def _classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.model.classifier(features)


@register("efficientnet_lite0")
class EfficientNetLite0Embedder(Embedder):
    """EfficientNet-Lite0 (efficientnet_lite_pytorch), weights from asset `efficientnet-lite0`; 1280-d.

    The weights are converted from TensorFlow's Lite models, which were trained on (x - 127) / 128
    of 0..255 pixels ("inception-style" for better quantisation), i.e. mean = std ~ 0.5 on [0, 1]
    rather than the ImageNet statistics.
    """

    mean = (127 / 255,) * 3
    std = (128 / 255,) * 3

    @classmethod
    def build(cls, device: torch.device) -> Embedder:
        from efficientnet_lite_pytorch import EfficientNet

        model = _load_strict(EfficientNet.from_name("efficientnet-lite0"), assets.require("efficientnet-lite0"))
        return cls(model, device)

    def _pooled(self, normalised: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(self.model.extract_features(normalised), 1).flatten(1)

    def _classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.model._fc(features)


@register("resnet50")
class ResNet50Embedder(Embedder):
    """torchvision ResNet-50 (IMAGENET1K_V1 or V2 file from the torch hub cache); 2048-d features."""

    @classmethod
    def build(cls, device: torch.device) -> Embedder:
        path = _hub_checkpoint("resnet50", ("resnet50-0676ba61.pth", "resnet50-11ad3fa6.pth"))
        return cls(_load_strict(torchvision.models.resnet50(weights=None), path), device)

    def _pooled(self, normalised: torch.Tensor) -> torch.Tensor:
        m = self.model
        x = m.maxpool(m.relu(m.bn1(m.conv1(normalised))))
        x = m.layer4(m.layer3(m.layer2(m.layer1(x))))
        return m.avgpool(x).flatten(1)

    def _classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.model.fc(features)


@register("vgg16")
class VGG16Embedder(Embedder):
    """torchvision VGG16 (IMAGENET1K_V1 file from the torch hub cache); 4096-d fc7 features after ReLU.

    VGG's pooled conv map is 25088-d; its penultimate layer is the second fully connected one.
    """

    @classmethod
    def build(cls, device: torch.device) -> Embedder:
        path = _hub_checkpoint("vgg16", ("vgg16-397923af.pth",))
        return cls(_load_strict(torchvision.models.vgg16(weights=None), path), device)

    def _pooled(self, normalised: torch.Tensor) -> torch.Tensor:
        pooled = self.model.avgpool(self.model.features(normalised)).flatten(1)
        return self.model.classifier[:-1](pooled)

    def _classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.model.classifier[-1](features)
