"""Every Q package refuses to load beside the unrelated `qcore` library, whichever was written last.

When the other library is installed after ours, its `qcore/__init__.py` is the one that runs and
checks nothing; qredis, qcluster and qdjango import `qcore.distribution` (our file, still there)
before anything else of qcore's, and that fails naming both distributions instead of a bare
"cannot import name 'Codec' from 'qcore'". The rehearsal (tools/release/rehearse.sh) does the
same with the real library from PyPI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import qcore

# What the other library's __init__ amounts to here: it imports fine and is not ours.
FOREIGN_INIT = '"""Another project\'s qcore."""\nfrom qcore.helpers import *  # noqa\n'


def _site_where_the_other_qcore_was_written_last(tmp_path: Path) -> Path:
    site = tmp_path / "site-packages"
    package = site / "qcore"
    shutil.copytree(
        Path(qcore.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__")
    )
    (package / "__init__.py").write_text(FOREIGN_INIT)
    (package / "helpers.py").write_text("def true_fn():\n    return True\n")
    (site / "qcore-1.11.1.dist-info").mkdir()
    return site


def _run(site: Path | None, code: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if site is not None:
        env["PYTHONPATH"] = str(site)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.mark.parametrize("package", ["qredis", "qcluster", "qdjango"])
def test_a_q_package_names_both_distributions(tmp_path: Path, package: str) -> None:
    site = _site_where_the_other_qcore_was_written_last(tmp_path)
    assert _run(site, "import qcore; assert not hasattr(qcore, 'Codec')").returncode == 0
    result = _run(site, f"import {package}")
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("qcore.distribution.DistributionConflict: two distributions provide")
    assert "'qtq-core' and the unrelated 'qcore' library (qcore-1.11.1.dist-info)" in last


@pytest.mark.parametrize("package", ["qredis", "qcluster", "qdjango"])
def test_a_q_package_imports_where_qcore_is_ours(package: str) -> None:
    result = _run(None, f"import {package}")
    assert result.returncode == 0, result.stderr
