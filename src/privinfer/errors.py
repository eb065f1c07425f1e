"""privinfer's own exceptions.

Every error a user can cause (a missing file, an unfetched asset, a bad option) is raised as a
`PrivinferError` subclass whose message names the thing and what to do, so the CLI can print one
line and exit non-zero instead of a traceback from deep inside a library.
"""

from __future__ import annotations


class PrivinferError(Exception):
    """Base class: the message is meant for the user, one line."""


class AssetMissingError(PrivinferError):
    """A model or image asset is not in the cache (or fails its hash check)."""


class AssetFetchError(PrivinferError):
    """A registry client (pip, npm, apt-get) failed to provide a package."""


class ImageReadError(PrivinferError):
    """An input image is missing, empty, not an image, or cannot be decoded."""


class ConfigError(PrivinferError):
    """An option has an unknown name or an out-of-range value."""


class ModelGraphError(PrivinferError):
    """A model graph uses an operation or layout this loader cannot execute."""
