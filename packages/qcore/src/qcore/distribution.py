"""Whose ``qcore`` this is: Q's ``qtq-core``, or the unrelated ``qcore`` library on PyPI.

Both distributions install an import package named ``qcore`` into the same folder, each over the
other's files (both have an ``errors.py``), so the two cannot share an environment. Importing
this module fails with a message naming both when the other one's metadata sits beside this
package. qcore imports it first; qredis, qcluster and qdjango import it before anything else of
qcore's, since the other library's ``__init__`` may be the one that was written last, and that
one never runs this check.

The check lists one folder: importing ``importlib.metadata`` to ask the same question would cost
every process more start-up time than the rest of qcore's own modules.
"""

from __future__ import annotations

import os

__all__ = ["DISTRIBUTION", "FOREIGN_DISTRIBUTION", "DistributionConflict", "check", "foreign"]

DISTRIBUTION = "qtq-core"
FOREIGN_DISTRIBUTION = "qcore"


# Not a qcore.QError: qcore/errors.py is one of the files the other library writes over.
class DistributionConflict(ImportError):
    """The unrelated ``qcore`` library is installed where Q's ``qtq-core`` is."""


def foreign(package_dir: str) -> list[str]:
    """The other ``qcore``'s metadata folders next to the ``qcore`` package in ``package_dir``."""
    parent = os.path.dirname(os.path.abspath(package_dir))
    try:
        names = os.listdir(parent)
    except OSError:
        return []
    return sorted(name for name in names if _is_foreign(name.lower()))


def _is_foreign(name: str) -> bool:
    stem, dot, suffix = name.rpartition(".")
    if not dot or suffix not in ("dist-info", "egg-info"):
        return False
    project = stem.split("-", 1)[0]
    return project == FOREIGN_DISTRIBUTION


def check(package_dir: str) -> None:
    """Raise :class:`DistributionConflict` if the other ``qcore`` is installed beside this one."""
    found = foreign(package_dir)
    if found:
        where = os.path.dirname(os.path.abspath(package_dir))
        raise DistributionConflict(
            f"two distributions provide the import package 'qcore' in {where}: Q's "
            f"{DISTRIBUTION!r} and the unrelated {FOREIGN_DISTRIBUTION!r} library "
            f"({', '.join(found)}). They write over each other's files and cannot be installed "
            f"in one environment: install Q in its own virtual environment, or run "
            f"'pip uninstall {FOREIGN_DISTRIBUTION} {DISTRIBUTION}' and reinstall the one you need."
        )


check(os.path.dirname(__file__))
