"""qdjango's errors: Q's own (:class:`qcore.QError`), re-exported where Django users look."""

from __future__ import annotations

from qcore import ConfigError, UnknownOption

__all__ = ["ConfigError", "UnknownOption"]
