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


class ModelExportError(PrivinferError):
    """The task model could not be exported to (or loaded back from) ONNX."""


class RequestError(PrivinferError):
    """A server refuses an inference request; each subclass maps to one gRPC status code."""


class BadRequestError(RequestError):
    """The request's tensors do not match the model's metadata (name, datatype, shape, bytes)."""


class UnknownModelError(RequestError):
    """The request names a model (or version) the server does not serve."""


class RequestTooLargeError(RequestError):
    """The request exceeds a server limit (batch size, tensor size)."""


class UnauthenticatedError(RequestError):
    """The request carries no bearer token, or the wrong one."""


class ServerBusyError(RequestError):
    """The server has as many requests in flight as it admits: it refuses this one at once (it is not
    broken: send the request elsewhere, or again shortly)."""


class ServerCallError(PrivinferError):
    """A remote server failed a call (unreachable, timed out, refused it, or answered nonsense)."""


class ServerBusyCallError(ServerCallError):
    """A remote server refused a call because it was busy (RESOURCE_EXHAUSTED with a retry hint):
    the call may go to another server now, and to this one again shortly. ``retry_after_s`` is the
    server's hint (None when it gave none)."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class TestbedError(PrivinferError):
    """The local network testbed cannot be built, inspected or removed (not root, a missing tool, a
    server that does not start)."""

    __test__ = False  # not a pytest test class, despite the name
