"""qcore stays free of I/O libraries: importing it pulls in neither redis nor Django."""

from __future__ import annotations

import subprocess
import sys


def test_import_qcore_loads_no_redis_or_django() -> None:
    code = (
        "import qcore, sys; "
        "bad = [m for m in ('redis', 'django') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
