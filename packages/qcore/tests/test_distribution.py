"""qcore knows it is Q's `qtq-core` and refuses to load beside the unrelated `qcore` library.

The two distributions install an import package of the same name into one folder, over each
other's files. The tests build such a folder: a copy of this qcore, and the other one's
metadata beside it, as pip leaves it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import qcore
import qtq_core
from qtq_core import DISTRIBUTION, foreign

PACKAGES = (Path(qcore.__file__).parent, Path(qtq_core.__file__).parent)


def _site(tmp_path: Path, *metadata: str) -> Path:
    site = tmp_path / "site-packages"
    for package in PACKAGES:
        shutil.copytree(package, site / package.name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in metadata:
        (site / name).mkdir()
        (site / name / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\n")
    return site


def _import(site: Path, code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )


def test_qcore_says_which_distribution_it_is() -> None:
    assert qcore.DISTRIBUTION == DISTRIBUTION == "qtq-core"


def test_import_fails_naming_both_distributions_beside_the_other_qcore(tmp_path: Path) -> None:
    site = _site(tmp_path, "qcore-1.11.1.dist-info", "qtq_core-0.1.0.dist-info")
    result = _import(site, "import qcore")
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("qtq_core.DistributionConflict: two distributions provide")
    assert "'qtq-core' and the unrelated 'qcore' library (qcore-1.11.1.dist-info)" in last
    assert "pip uninstall qcore qtq-core" in last


def test_import_works_with_only_our_own_metadata_beside_it(tmp_path: Path) -> None:
    site = _site(tmp_path, "qtq_core-0.1.0.dist-info", "qcore_tools-2.0.dist-info")
    result = _import(site, "import qcore; print(qcore.__file__)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(site / "qcore" / "__init__.py")


@pytest.mark.parametrize(
    ("entry", "other"),
    [
        ("qcore-1.11.1.dist-info", True),
        ("QCore-0.5.0.dist-info", True),
        ("qcore-1.0-py3.11.egg-info", True),
        ("qcore.egg-info", True),
        ("qtq_core-0.1.0.dist-info", False),
        ("qcore_tools-2.0.dist-info", False),
        ("qcoreutils-1.0.dist-info", False),
        ("qcore", False),
        ("qcore-notes.txt", False),
    ],
)
def test_what_counts_as_the_other_qcore(tmp_path: Path, entry: str, other: bool) -> None:
    (tmp_path / "qcore").mkdir()
    if entry != "qcore":
        (tmp_path / entry).mkdir()
    assert foreign(str(tmp_path / "qcore")) == ([entry] if other else [])
