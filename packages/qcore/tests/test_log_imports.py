"""qcore.log imports structlog without rich (5 MiB in every process), and rich stays usable."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
import qcore
assert "structlog" in sys.modules
assert not [m for m in sys.modules if m == "rich" or m.startswith(("rich.", "pygments"))]
import rich.console  # still importable for whoever wants it
print("ok")
"""


def test_structlog_comes_without_rich_and_rich_stays_importable() -> None:
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
