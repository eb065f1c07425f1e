"""Bearer tokens and TLS for the gRPC transport: reading the files, checking a call's token.

A token travels as call metadata ``authorization: Bearer <token>``; over plain TCP anyone on the
path can read it, so use TLS (``--tls-cert/--tls-key`` on the server, ``--tls-ca`` on the client)
anywhere but on loopback.
"""

from __future__ import annotations

import hmac
from pathlib import Path

import grpc

from privinfer.errors import ConfigError

AUTH_HEADER = "authorization"  # gRPC metadata keys are lower case
_SCHEME = "Bearer "


def read_token(path: Path) -> str:
    """The token in ``path`` (surrounding whitespace ignored). Raises ConfigError if missing or empty."""
    token = _read(path, "token file").decode("utf-8", errors="replace").strip()
    if not token:
        raise ConfigError(f"token file {path} is empty")
    return token


def bearer_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    """Call metadata carrying ``token`` (none without one)."""
    return () if token is None else ((AUTH_HEADER, _SCHEME + token),)


def token_matches(metadata: tuple[tuple[str, str | bytes], ...], token: str) -> bool:
    """Whether the call's metadata carries ``token``; compared in constant time."""
    given = next((value for key, value in metadata if key == AUTH_HEADER), "")
    given_bytes = given if isinstance(given, bytes) else given.encode("utf-8", errors="replace")
    return hmac.compare_digest(given_bytes, (_SCHEME + token).encode("utf-8"))


def server_credentials(cert: Path | None, key: Path | None) -> grpc.ServerCredentials | None:
    """TLS credentials from a PEM certificate (chain) and its private key; None for plain TCP.

    Raises ConfigError when only one of the two is given or a file cannot be read.
    """
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ConfigError("TLS needs both --tls-cert and --tls-key")
    return grpc.ssl_server_credentials([(_read(key, "TLS key"), _read(cert, "TLS certificate"))])


def channel_credentials(ca: Path | None) -> grpc.ChannelCredentials | None:
    """TLS credentials trusting the PEM certificate(s) in ``ca``; None for plain TCP."""
    return None if ca is None else grpc.ssl_channel_credentials(root_certificates=_read(ca, "TLS CA file"))


def _read(path: Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise ConfigError(f"{what} {path}: cannot read it ({error.strerror})") from None
