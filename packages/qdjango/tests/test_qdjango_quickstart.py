"""The README's main-job command: ``python examples/quickstart/demo.py``, run as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "examples" / "quickstart" / "demo.py"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "Q_REDIS"))}
    env["QUICKSTART_DB"] = str(tmp_path / "quickstart.sqlite3")
    env.update(extra)
    return env


@pytest.mark.slow
def test_demo_runs_the_seed_examples_on_a_private_redis(tmp_path: Path, redis_binary: str) -> None:
    done = subprocess.run(
        [sys.executable, str(DEMO)],
        env=_env(tmp_path, REDIS_SERVER=redis_binary),
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "a private redis-server on port" in out
    assert "async_task('math.copysign', 2, -2)" in out and "-> -2.0" in out
    assert "hook print_result:" in out and "-> (0.5, 2.0)" in out
    assert "async_task(lambda x: x * 2, 21)" in out and "-> 42" in out
    assert "Failure: ZeroDivisionError: division by zero" in out
    assert "[(0.0, 0.0), (0.0, 1.0), (0.0, 2.0), (0.0, 3.0)]" in out
    assert "Cluster stopped (exit code 0)" in out
    assert (tmp_path / "quickstart.sqlite3").exists()


def test_demo_says_how_to_get_redis_when_there_is_none(tmp_path: Path) -> None:
    env = _env(tmp_path, PATH=str(tmp_path), REDIS_SERVER="")
    done = subprocess.run(
        [sys.executable, str(DEMO)], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "apt-get install redis-server" in done.stderr
    assert "Q_REDIS_URL" in done.stderr


def test_demo_refuses_a_configured_redis_that_does_not_answer(tmp_path: Path) -> None:
    from tests.support.servers import free_port

    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    done = subprocess.run(
        [sys.executable, str(DEMO)],
        env=_env(tmp_path, Q_REDIS_URL=url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "does not answer" in done.stderr and "hunter2" not in done.stderr
