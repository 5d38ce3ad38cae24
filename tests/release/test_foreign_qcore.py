"""Every Q package refuses to load beside the unrelated `qcore` library, whichever was written last.

When the other library is installed after ours, its `qcore/__init__.py` is the one that runs and
may fail on the mixed files; qredis, qcluster and qdjango import `qtq_core` (our own top-level
module) before anything of qcore's, and that fails naming both distributions instead of a bare
"cannot import name ... from 'qcore'". The rehearsal (tools/release/rehearse.sh) does the
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
import qtq_core

# What the other library's __init__ and errors.py amount to here. Its __init__ imports its
# `testing` module, which our `qcore/testing/` package shadows, and that needs our errors.py,
# written over by theirs: the other __init__ fails before anything of ours could run (as the
# real one does, in the rehearsal).
FOREIGN_INIT = '"""Another project\'s qcore."""\nfrom . import helpers, testing\n'
FOREIGN_ERRORS = "class Error(Exception):\n    pass\n"


def _site_where_the_other_qcore_was_written_last(tmp_path: Path) -> Path:
    site = tmp_path / "site-packages"
    package = site / "qcore"
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(Path(qcore.__file__).parent, package, ignore=ignore)
    shutil.copytree(Path(qtq_core.__file__).parent, site / "qtq_core", ignore=ignore)
    (package / "__init__.py").write_text(FOREIGN_INIT)
    (package / "helpers.py").write_text("def true_fn():\n    return True\n")
    (package / "errors.py").write_text(FOREIGN_ERRORS)
    (package / "testing.py").write_text("FOREIGN = True\n")
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
    broken = _run(site, "import qcore")
    assert broken.returncode != 0 and "cannot import name" in broken.stderr, broken.stderr
    result = _run(site, f"import {package}")
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("qtq_core.DistributionConflict: two distributions provide")
    assert "'qtq-core' and the unrelated 'qcore' library (qcore-1.11.1.dist-info)" in last


@pytest.mark.parametrize("package", ["qredis", "qcluster", "qdjango"])
def test_a_q_package_imports_where_qcore_is_ours(package: str) -> None:
    result = _run(None, f"import {package}")
    assert result.returncode == 0, result.stderr


def test_a_qcore_elsewhere_on_the_path_that_shadows_ours_is_named(tmp_path: Path) -> None:
    # The other library in a folder of its own, ahead of ours on sys.path (PYTHONPATH, a user
    # site): `import qcore` would load it, and our qcore would never run.
    site = tmp_path / "elsewhere"
    (site / "qcore").mkdir(parents=True)
    (site / "qcore" / "__init__.py").write_text('"""Another project\'s qcore."""\n')
    (site / "qcore-1.11.1.dist-info").mkdir()
    result = _run(site, "import qredis")
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("qtq_core.DistributionConflict: two distributions provide")
    assert f"{site} (whose qcore Python imports)" in last and "qcore-1.11.1.dist-info" in last
