"""The plain-Python getting-started page's samples (examples/plain) run as the page says: a
``qcluster run --import tasks`` in that folder and ``python send.py`` beside it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLAIN = ROOT / "examples" / "plain"


@pytest.mark.slow
def test_the_plain_python_samples_run_on_a_cluster(redis_url: str) -> None:
    env = {
        **os.environ,
        "Q_REDIS_URL": redis_url,
        "Q_SECRET_KEY": "docs-example-secret-0123456789-abcdefgh",
    }
    cluster = subprocess.Popen(
        [sys.executable, "-m", "qcluster.cli", "run", "--workers", "2", "--import", "tasks"],
        cwd=PLAIN,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        sent = subprocess.run(
            [sys.executable, "send.py"],
            cwd=PLAIN,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        cluster.send_signal(signal.SIGINT)
        out, _ = cluster.communicate(timeout=60)
    assert sent.returncode == 0, sent.stdout + sent.stderr + out
    assert sent.stdout.splitlines() == [
        "(960, 540)",
        "[(400, 300), (320, 240)]",
        "False TypeError: can't multiply sequence by non-int of type 'float'",
    ]
    assert cluster.returncode == 0, out
    # The hook printed in a worker, into the cluster's output.
    assert ": (960, 540)" in out
