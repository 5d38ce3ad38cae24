"""The signing keys of a process that is not a Django site: ``$Q_SECRET_KEY`` and
``$Q_SECRET_KEY_FALLBACKS`` (comma-separated secrets still accepted while keys rotate)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from qcore.codec import Codec
from qcore.errors import ConfigError
from qcore.signing import Signer

__all__ = ["FALLBACKS_ENV", "SECRET_ENV", "WIRE_VERSION_ENV", "codec_for"]

SECRET_ENV = "Q_SECRET_KEY"
FALLBACKS_ENV = "Q_SECRET_KEY_FALLBACKS"
WIRE_VERSION_ENV = "Q_WIRE_VERSION"
"""Pins the wire version a process writes during a rolling upgrade (see qcore.Codec)."""


def codec_for(
    secret: str | bytes | None = None,
    fallbacks: Iterable[str | bytes] | None = None,
    *,
    secret_env: str = SECRET_ENV,
    fallbacks_env: str = FALLBACKS_ENV,
    **codec_options: Any,
) -> Codec:
    """``Codec(Signer.from_secret(secret, fallbacks))``, the secrets read from the environment
    when not given: ``$Q_SECRET_KEY`` and the comma-separated ``$Q_SECRET_KEY_FALLBACKS``.

    Producers, result stores and clusters all build their codec here, so a rotation (new
    secret, old one as a fallback) applies to tasks and saved results alike, and so does
    ``$Q_WIRE_VERSION`` (the wire version written, for a rolling upgrade).
    """
    if secret is None:
        secret = os.environ.get(secret_env)
        if not secret:
            raise ConfigError(
                f"no signing secret: set {secret_env} to a long random string, the same for "
                "producers and clusters (or pass secret=)"
            )
    if fallbacks is None:
        fallbacks = [f.strip() for f in os.environ.get(fallbacks_env, "").split(",") if f.strip()]
    if "write_version" not in codec_options and os.environ.get(WIRE_VERSION_ENV, "").strip():
        raw = os.environ[WIRE_VERSION_ENV].strip()
        try:
            codec_options["write_version"] = int(raw)
        except ValueError:
            raise ConfigError(
                f"{WIRE_VERSION_ENV} must be a wire major version, not {raw!r}"
            ) from None
    return Codec(Signer.from_secret(secret, fallbacks), **codec_options)
