"""The signing secret of a process that is not a Django site: ``$Q_SECRET_KEY``."""

from __future__ import annotations

import os

from qcore import Codec, ConfigError, Signer

__all__ = ["SECRET_ENV", "codec_for"]

SECRET_ENV = "Q_SECRET_KEY"


def codec_for(secret: str | bytes | None = None) -> Codec:
    """``Codec(Signer.from_secret(secret))``; the secret defaults to ``$Q_SECRET_KEY``."""
    if secret is None:
        secret = os.environ.get(SECRET_ENV)
        if not secret:
            raise ConfigError(
                f"no signing secret: pass secret= or set the environment variable {SECRET_ENV} "
                "to a long random string (the same one the cluster uses)"
            )
    return Codec(Signer.from_secret(secret))
