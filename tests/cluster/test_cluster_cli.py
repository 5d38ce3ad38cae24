"""The ``qcluster`` command: run (signals, exit codes), info, monitor; and a plain virtualenv."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cluster.support import Bench, eventually

ROOT = Path(__file__).resolve().parents[2]


def _qcluster(*args: str, python: str = sys.executable) -> list[str]:
    return [python, "-m", "qcluster.cli", *args]


def _start(cmd: list[str], cwd: Path | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        cmd,
        cwd=cwd or ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _stop(process: subprocess.Popen[str], sig: int = signal.SIGINT) -> tuple[int, str]:
    process.send_signal(sig)
    out, _ = process.communicate(timeout=30)
    return process.returncode, out


def test_run_processes_tasks_and_stops_on_sigint_with_exit_code_0(bench: Bench) -> None:
    ids = bench.producer.enqueue_many("tests.cluster.tasks.square", list(range(50)))
    process = _start(
        _qcluster(
            "run",
            "--redis-url",
            bench.url,
            "--queue",
            bench.queue,
            "--result-namespace",
            bench.queue,
            "--status-namespace",
            bench.queue,
            "--workers",
            "2",
            "--import",
            "tests.cluster.tasks",
            "--json-logs",
        )
    )
    try:
        records = bench.wait_all(ids, timeout=60)
        assert [records[i].result for i in ids] == [i * i for i in range(50)]
        eventually(bench.board.clusters, what="the cluster's status")
        info = subprocess.run(
            _qcluster("info", "--redis-url", bench.url, "--status-namespace", bench.queue),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert bench.queue in info.stdout and "running" in info.stdout
        once = subprocess.run(
            _qcluster(
                "monitor", "--once", "--redis-url", bench.url, "--status-namespace", bench.queue
            ),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert "Workers" in once.stdout and bench.queue in once.stdout
        assert f"Redis: {bench.url}" in once.stdout  # which Redis it read (masked: none here)
    finally:
        code, out = _stop(process)
    assert code == 0, out
    assert '"event": "cluster.stopped"' in out
    assert bench.board.clusters() == []


def test_run_refuses_a_bad_setting_with_a_clear_message(bench: Bench) -> None:
    result = subprocess.run(
        _qcluster("run", "--redis-url", bench.url, "--timeout", "60", "--retry", "30"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "retry (30) must be greater than timeout (60): tasks would run twice" in result.stderr


def test_run_without_a_secret_says_how_to_set_one(bench: Bench) -> None:
    env = {k: v for k, v in os.environ.items() if k != "Q_SECRET_KEY"}
    result = subprocess.run(
        _qcluster("run", "--redis-url", bench.url),
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 2 and "set Q_SECRET_KEY" in result.stderr


@pytest.mark.slow
def test_qcluster_run_in_a_plain_virtualenv_without_django(bench: Bench, tmp_path: Path) -> None:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH")
    dist = tmp_path / "dist"
    for package in ("qtq-core", "qtq-redis", "qtq-cluster"):
        subprocess.run(
            [uv, "build", "--package", package, "--wheel", "-o", str(dist)],
            cwd=ROOT,
            check=True,
            capture_output=True,
            timeout=300,
        )
    venv = tmp_path / "venv"
    subprocess.run([uv, "venv", "--python", sys.executable, str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    # The wheel files themselves (installing by name from an index: tools/release/rehearse.sh).
    wheels = sorted(str(w) for w in dist.glob("*.whl"))
    assert len(wheels) == 3
    subprocess.run(
        [uv, "pip", "install", "--python", python, *wheels],
        check=True,
        capture_output=True,
        timeout=300,
    )
    no_django = subprocess.run([python, "-c", "import django"], capture_output=True)
    assert no_django.returncode != 0
    app = tmp_path / "app"
    app.mkdir()
    (app / "venvtasks.py").write_text("def mul(a, b):\n    return a * b\n")
    process = subprocess.Popen(
        [
            str(venv / "bin" / "qcluster"),
            "run",
            "--redis-url",
            bench.url,
            "--queue",
            bench.queue,
            "--result-namespace",
            bench.queue,
            "--workers",
            "2",
            "--import",
            "venvtasks",
        ],
        cwd=app,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")},
    )
    try:
        ids = [bench.producer.enqueue("venvtasks.mul", i, 3) for i in range(20)]
        records = bench.wait_all(ids, timeout=60)
    finally:
        code, out = _stop(process, signal.SIGTERM)
    assert [records[i].result for i in ids] == [i * 3 for i in range(20)], out
    assert code == 0, out


def test_a_second_ctrl_c_stops_at_once(bench: Bench, tmp_path: Path) -> None:
    mark = tmp_path / "started"
    long_id = bench.producer.enqueue("tests.cluster.tasks.touch_and_sleep", str(mark), 60)
    process = _start(
        _qcluster(
            "run",
            "--redis-url",
            bench.url,
            "--queue",
            bench.queue,
            "--workers",
            "1",
            "--grace",
            "60",
            "--import",
            "tests.cluster.tasks",
            "--json-logs",
        )
    )
    try:
        eventually(mark.exists, timeout=30, what="the long task to start")
        process.send_signal(signal.SIGINT)
        assert process.stdout is not None
        for line in process.stdout:  # the first Ctrl+C is being handled: a graceful stop
            if "cluster.stopping" in line:
                break
        began = time.monotonic()
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert time.monotonic() - began < 5
    assert bench.transport.queue_size() == 1  # the interrupted task is back in the queue
    assert bench.store.get(long_id) is None
