"""qcluster's errors, rooted in :class:`qcore.QError`."""

from __future__ import annotations

from qcore import ConfigError, QError

__all__ = ["ClusterError", "ConfigError"]


class ClusterError(QError):
    """The cluster could not do what was asked (start, stop, supervise)."""
