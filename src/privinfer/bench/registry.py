"""Benchmark sections by name: each measured thing registers one, ``--only`` picks them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from privinfer.errors import ConfigError

if TYPE_CHECKING:
    from privinfer.bench.context import BenchContext


@dataclass(frozen=True)
class Section:
    """One measured thing.

    run: measures, returns JSON-ready figures (written to ``<out>/<name>.json``).
    markdown: those figures as lines of the summary (a table, a sentence).
    plot: draws them into the given folder, returns the file name; None when the section has no plot.
    """

    name: str
    title: str
    run: Callable[[BenchContext], dict]
    markdown: Callable[[dict], list[str]]
    plot: Callable[[dict, Path], str | None] | None = None


_REGISTRY: dict[str, Section] = {}


def register(section: Section) -> Section:
    _REGISTRY[section.name] = section
    return section


def available() -> list[str]:
    """Section names in the order they run (registration order: cheap ones first)."""
    return list(_REGISTRY)


def select(only: Sequence[str] | None = None, skip: Sequence[str] = ()) -> list[Section]:
    """The sections to run: ``only`` (all when None) minus ``skip``, in registry order.

    Raises:
        ConfigError: a name that is not a section (the message lists them).
    """
    for name in [*(only or ()), *skip]:
        if name not in _REGISTRY:
            raise ConfigError(
                f"--only/--skip: unknown benchmark section '{name}'; choose from: {', '.join(available())}"
            )
    chosen = [s for name, s in _REGISTRY.items() if (only is None or name in only) and name not in skip]
    if not chosen:
        raise ConfigError("--only/--skip leave no benchmark section to run")
    return chosen
