"""Shared fixtures: the task model is built once per test session (it takes about a second)."""

from __future__ import annotations

import pytest
from hypothesis import settings

from privinfer import assets
from privinfer.images import read_image

# No wall-clock limit per example: hypothesis's default (200 ms) fails a property on a loaded machine.
settings.register_profile("any-machine", deadline=None)
settings.load_profile("any-machine")


@pytest.fixture(scope="session")
def nanodet_model():
    from privinfer.models.nanodet import load_nanodet

    return load_nanodet("cpu")


@pytest.fixture(scope="session")
def dog_rgb():
    return read_image(assets.require("dog.jpg")).pixels
