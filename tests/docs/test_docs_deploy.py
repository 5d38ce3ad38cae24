"""The deployment pages' files (examples/deploy) checked without a Docker engine or systemd:
the files parse, and the commands inside them run here as they would in the container or the
unit, on the quickstart site, a private Redis and an SQLite file."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "examples" / "deploy"
SITE = ROOT / "examples" / "quickstart"


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) pairs, continuation lines joined, comments dropped."""
    lines, current = [], ""
    for raw in (DEPLOY / "Dockerfile").read_text().splitlines():
        if not current and (not raw.strip() or raw.lstrip().startswith("#")):
            continue
        current += raw.rstrip("\\").strip() + " "
        if not raw.endswith("\\"):
            lines.append(current.strip())
            current = ""
    assert not current, "a continuation line ends the Dockerfile"
    return [(line.split(None, 1)[0], line.split(None, 1)[1]) for line in lines]


def test_the_dockerfile_and_the_compose_file_agree_and_point_at_what_exists() -> None:
    steps = dockerfile()
    known = {"FROM", "ENV", "WORKDIR", "COPY", "RUN", "USER", "STOPSIGNAL", "CMD"}
    assert {op for op, _ in steps} <= known
    assert steps[0][0] == "FROM"
    spec = compose()
    services = spec["services"]
    built = [s for s in services.values() if "build" in s]
    assert {s["build"]["dockerfile"] for s in built} == {"examples/deploy/Dockerfile"}
    context = (DEPLOY / built[0]["build"]["context"]).resolve()
    assert context == ROOT
    for op, args in steps:
        if op == "COPY":
            source, _ = args.split()
            assert (context / source).exists(), source
        if op == "RUN" and args.startswith("pip install"):
            for target in args.split()[2:]:
                assert (context / target.removeprefix("/src/")).is_dir(), target
    cmd = dict(steps)["CMD"]
    assert yaml.safe_load(cmd) == services["cluster"]["command"]
    assert dict(steps)["STOPSIGNAL"] == services["cluster"]["stop_signal"] == "SIGTERM"
    redis = services["redis"]["command"]
    assert "--appendonly" in redis and redis[redis.index("--appendonly") + 1] == "yes"
    policy = redis[redis.index("--maxmemory-policy") + 1]
    assert policy == "noeviction"


def _env(tmp_path: Path, redis_url: str) -> dict[str, str]:
    """The compose file's environment, as the container would see it, pointed at here."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "Q_"))}
    declared = compose()["x-site"]["environment"]
    env.update({k: str(v) for k, v in declared.items()})
    env["DJANGO_SECRET_KEY"] = "compose-test-secret-0123456789abcdefghijklmnopqrstuv"
    env["Q_REDIS_URL"] = redis_url
    env["QUICKSTART_DB"] = str(tmp_path / "db.sqlite3")
    return env


def _here(command: list[str]) -> list[str]:
    assert command[0] == "python"
    return [sys.executable, *command[1:]]


@pytest.mark.slow
def test_the_compose_services_commands_run_outside_docker(tmp_path: Path, redis_url: str) -> None:
    services = compose()["services"]
    env = _env(tmp_path, redis_url)
    migrate = subprocess.run(
        _here(services["migrate"]["command"]),
        cwd=SITE,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    cluster = subprocess.Popen(
        _here(services["cluster"]["command"]),
        cwd=SITE,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    started = threading.Event()

    def read() -> None:
        assert cluster.stdout is not None
        for line in cluster.stdout:
            lines.append(line)
            if '"cluster.started"' in line:
                started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert started.wait(120), "".join(lines)
        code = (
            "from qdjango import async_task, result; "
            "print(result(async_task('math.copysign', 2, -2), wait=30000))"
        )
        sent = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", code],
            cwd=SITE,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert sent.stdout.strip().splitlines()[-1] == "-2.0", sent.stdout + sent.stderr
    finally:
        cluster.send_signal(getattr(signal, services["cluster"]["stop_signal"]))
        grace = int(services["cluster"]["stop_grace_period"].rstrip("s"))
        cluster.wait(timeout=grace)
        reader.join(timeout=10)
    assert cluster.returncode == 0, "".join(lines)
    assert any('"cluster.stopped"' in line for line in lines)


def _unit() -> dict[str, str]:
    found = {}
    for line in (DEPLOY / "q-cluster.service").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            found[key] = value
    return found


def test_the_systemd_unit_runs_the_same_command_as_the_container() -> None:
    unit = _unit()
    command = shlex.split(unit["ExecStart"])
    assert command[0].endswith("/bin/python")
    assert command[1:] == compose()["services"]["cluster"]["command"][1:]
    assert unit["KillSignal"] == "SIGTERM" and unit["KillMode"] == "mixed"
    # Longer than the cluster's default grace, so a graceful stop is never cut short.
    assert int(unit["TimeoutStopSec"]) > 10


def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here")
    text = (DEPLOY / "q-cluster.service").read_text()
    # The paths of a real host, made to exist here: the interpreter and the environment file.
    unit = _unit()
    python = shlex.split(unit["ExecStart"])[0]
    (tmp_path / "env").write_text("DJANGO_SETTINGS_MODULE=quickstart.settings\n")
    text = text.replace(python, sys.executable).replace(
        unit["EnvironmentFile"], str(tmp_path / "env")
    )
    path = tmp_path / "q-cluster.service"
    path.write_text(text)
    done = subprocess.run(
        [analyze, "verify", str(path)], capture_output=True, text=True, timeout=60
    )
    # verify exits 0 on some bad settings and only prints them: nothing may be printed.
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
