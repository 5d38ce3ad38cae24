"""qdjango's errors, under Q's one root :class:`qcore.QError`."""

from __future__ import annotations

from qcore import ConfigError, QError

__all__ = ["ConfigError", "QDjangoError", "UnknownOption"]


class QDjangoError(QError):
    """Something qdjango was asked to do could not be done."""


class UnknownOption(QDjangoError, TypeError):
    """``q_options`` named an option Q does not know (the message lists the known ones)."""
