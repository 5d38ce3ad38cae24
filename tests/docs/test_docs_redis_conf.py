"""The Redis settings page's configuration (examples/deploy/redis.conf), ACL user included,
runs a cluster end to end: Q needs nothing that user may not do."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "examples" / "deploy" / "redis.conf"
PLAIN = ROOT / "examples" / "plain"


@pytest.fixture
def acl_redis(redis_binary: str, tmp_path: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    conf = tmp_path / "redis.conf"
    conf.write_text(CONF.read_text() + f'\nport {port}\nbind 127.0.0.1\ndir {tmp_path}\nsave ""\n')
    process = subprocess.Popen([redis_binary, str(conf)], stdout=subprocess.DEVNULL)
    try:
        client = redis.Redis(port=port, username="q", password="change-this-password")
        for _ in range(500):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.01)
        client.close()
        yield f"redis://q:change-this-password@127.0.0.1:{port}/0", port
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


@pytest.mark.slow
def test_a_cluster_runs_as_the_acl_user_of_the_redis_settings_page(
    acl_redis: tuple[str, int],
) -> None:
    url, port = acl_redis
    # The user may not touch anything else, and the default user is off.
    q = redis.Redis(port=port, username="q", password="change-this-password")
    with pytest.raises(redis.exceptions.NoPermissionError):
        q.set("someone-else:key", "x")
    with pytest.raises(redis.exceptions.NoPermissionError):
        q.config_set("appendonly", "no")
    for dangerous in ("FLUSHALL", "FLUSHDB", "KEYS *", "SHUTDOWN", "ACL LIST"):
        with pytest.raises(redis.exceptions.NoPermissionError):
            q.execute_command(*dangerous.split())
    # What the start-up check reads.
    assert q.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
    q.close()
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(port=port).ping()

    env = {
        **os.environ,
        "Q_REDIS_URL": url,
        "Q_SECRET_KEY": "acl-example-secret-0123456789-abcdefgh",
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
        info = subprocess.run(
            [sys.executable, "-m", "qcluster.cli", "info"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        cluster.send_signal(signal.SIGINT)
        out, _ = cluster.communicate(timeout=60)
    assert sent.returncode == 0, sent.stdout + sent.stderr + out
    assert sent.stdout.splitlines()[0] == "(960, 540)"
    assert info.returncode == 0 and "running" in info.stdout, info.stdout + info.stderr
    assert cluster.returncode == 0, out
    # The start-up check could read the settings (config|get) and found nothing to warn about.
    assert "redis.settings" not in out and "NOPERM" not in out and "NoPermission" not in out, out
    assert not re.search(r"\[(error|critical)", out), out
