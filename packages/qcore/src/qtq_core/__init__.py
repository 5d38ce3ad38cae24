"""qtq_core: whose ``qcore`` this is, Q's ``qtq-core`` or the unrelated ``qcore`` library on PyPI.

Both distributions install an import package named ``qcore`` into the same folder, each over the
other's files (both have an ``errors.py`` and a ``testing``), so the two cannot share an
environment. Importing this module fails with a message naming both when the other one's
metadata sits beside it. It is a top-level module of its own, shipped in the ``qtq-core``
wheel next to ``qcore``, because the check must run before any ``qcore/__init__.py``: when the
other library was installed last, its ``__init__`` is the one there, and it can fail on the
mixed files before anything of ours runs. qcore imports it first, and so do qredis, qcluster
and qdjango, before anything of qcore's.

The check lists one folder: importing ``importlib.metadata`` to ask the same question would cost
every process more start-up time than the rest of qcore's own modules.
"""

from __future__ import annotations

import os
import sys

__all__ = ["DISTRIBUTION", "FOREIGN_DISTRIBUTION", "DistributionConflict", "check", "foreign"]

DISTRIBUTION = "qtq-core"
__version__ = "0.1.0"
FOREIGN_DISTRIBUTION = "qcore"


# Not a qcore.QError: qcore/errors.py is one of the files the other library writes over.
class DistributionConflict(ImportError):
    """The unrelated ``qcore`` library is installed where Q's ``qtq-core`` is."""


def foreign(package_dir: str) -> list[str]:
    """The other ``qcore``'s metadata folders in the folder that holds ``package_dir``."""
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


def _qcore_dir() -> str | None:
    """The folder of the ``qcore`` package that ``import qcore`` loads, without running it."""
    module = sys.modules.get("qcore")
    spec = getattr(module, "__spec__", None)
    for finder in () if spec is not None else sys.meta_path:
        find = getattr(finder, "find_spec", None)
        spec = find("qcore", None) if find is not None else None
        if spec is not None:
            break
    locations = getattr(spec, "submodule_search_locations", None)
    return os.path.abspath(next(iter(locations))) if locations else None


def check(package_dir: str) -> None:
    """Raise :class:`DistributionConflict` if the other ``qcore`` lies beside ``package_dir``,
    or beside the ``qcore`` that Python imports when that one is not next to ``package_dir``."""
    found = foreign(package_dir)
    where = os.path.dirname(os.path.abspath(package_dir))
    qcore_dir = _qcore_dir()
    shadowed = qcore_dir is not None and os.path.dirname(qcore_dir) != where
    if shadowed and qcore_dir is not None:
        found += foreign(qcore_dir)
        where = f"{where} and {os.path.dirname(qcore_dir)} (whose qcore Python imports)"
    if found or shadowed:
        raise DistributionConflict(
            f"two distributions provide the import package 'qcore' in {where}: Q's "
            f"{DISTRIBUTION!r} and the unrelated {FOREIGN_DISTRIBUTION!r} library "
            f"({', '.join(found) or 'its files'}). They write over each other's files and cannot "
            f"be installed in one environment: install Q in its own virtual environment, or run "
            f"'pip uninstall {FOREIGN_DISTRIBUTION} {DISTRIBUTION}' and reinstall the one you need."
        )


check(os.path.dirname(__file__))
