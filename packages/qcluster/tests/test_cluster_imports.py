"""What a cluster process imports: every module is in memory once per tree, so less is less."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
import qcluster.cli, qcluster.sentinel, qcluster.worker, qredis
heavy = [m for m in sys.modules if m.split(".")[0] in ("rich", "pygments", "django")]
print(heavy)
"""


def test_the_cli_sentinel_and_workers_import_no_rich_pygments_or_django() -> None:
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
