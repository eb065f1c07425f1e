"""Sensitive-object detectors, built by name from a registry.

Add a detector: write a module here with a `SensitiveDetector` subclass and decorate it with
`@register("name")`; import the module below so the registry sees it.
"""

from __future__ import annotations

from collections.abc import Callable

from privinfer.client.detect.base import DetectorOptions, SensitiveDetector
from privinfer.errors import ConfigError

_REGISTRY: dict[str, Callable[..., SensitiveDetector]] = {}


def register(name: str) -> Callable[[type[SensitiveDetector]], type[SensitiveDetector]]:
    def decorate(cls: type[SensitiveDetector]) -> type[SensitiveDetector]:
        _REGISTRY[name] = cls
        return cls

    return decorate


def available() -> list[str]:
    return sorted(_REGISTRY)


def create(name: str, options: DetectorOptions | None = None, **kwargs) -> SensitiveDetector:
    """Build a detector by registry name.

    Raises:
        ConfigError: the name is unknown (the message lists the valid ones).
    """
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown sensitive detector '{name}'; choose from: {', '.join(available())}") from None
    return factory(options=options, **kwargs)


def describe(detectors: dict[str, SensitiveDetector], mask_scale: float) -> str:
    """What runs, for people: 'sensitive detectors: faces (threshold 0.2), boxes grown x1.3', or
    that none does."""
    if not detectors:
        return "sensitive detectors: none (--sensitive ''): no region is marked sensitive"
    each = ", ".join(f"{name} (threshold {detector.threshold:g})" for name, detector in detectors.items())
    return f"sensitive detectors: {each}, boxes grown x{mask_scale:g}"


__all__ = ["DetectorOptions", "SensitiveDetector", "available", "create", "describe", "register"]

# Imported last so that each module's @register finds the registry above.
from privinfer.client.detect import blazeface, cascade, centerface, plates, task_classes, text  # noqa: E402, F401
