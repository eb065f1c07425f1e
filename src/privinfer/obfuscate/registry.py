"""Build obfuscators by name: ``create_obfuscator("gaussian", sigma=0.5)``."""

from __future__ import annotations

from collections.abc import Callable

from privinfer.errors import ConfigError
from privinfer.obfuscate.base import Obfuscator

_REGISTRY: dict[str, Callable[..., Obfuscator]] = {}


def register(name: str):
    def decorate(cls):
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def available_obfuscators() -> list[str]:
    return sorted(_REGISTRY)


def obfuscator_space(name: str) -> str:
    """Whether obfuscator ``name`` works on features ("embedding") or pixels ("pixels"), without
    building it. Raises ConfigError for an unknown name."""
    try:
        return _REGISTRY[name].space
    except KeyError:
        raise ConfigError(f"unknown obfuscator '{name}'; choose from: {', '.join(available_obfuscators())}") from None


def obfuscator_class(name: str) -> type[Obfuscator]:
    """The class registered as ``name``, not built. Raises ConfigError for an unknown name."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown obfuscator '{name}'; choose from: {', '.join(available_obfuscators())}") from None


def create_obfuscator(name: str, **options) -> Obfuscator:
    """Raises ConfigError naming the valid obfuscators (or the bad option) on bad input."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown obfuscator '{name}'; choose from: {', '.join(available_obfuscators())}") from None
    try:
        return factory(**options)
    except TypeError as error:
        raise ConfigError(f"bad option for obfuscator '{name}': {error}") from None
