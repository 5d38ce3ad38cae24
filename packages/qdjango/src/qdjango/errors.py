"""qdjango's errors, under Q's one root :class:`qcore.QError`."""

from __future__ import annotations

from qcore import ConfigError, QError, UnknownOption

__all__ = ["ConfigError", "QDjangoError", "UnknownOption"]


class QDjangoError(QError):
    """Something qdjango was asked to do could not be done."""
