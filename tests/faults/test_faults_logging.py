"""What the logs hold: never task arguments, results or passwords unless asked; warnings about
a Redis that could lose tasks.

Each test runs ``qcluster run`` in a subprocess and reads everything it wrote: the sentinel's
lines and every worker's (they inherit its stdout and stderr), at the debug level, where the
most is logged.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from qredis import Producer
from tests.faults import tasks
from tests.faults.support import ClusterProcess
from tests.support.servers import RedisServer

PASSWORD = "redis-pw-4d9e1c7a"
CARD = "4929-1234-5678-9012"  # a secret-looking argument


def _run_cluster(
    server: RedisServer, queue: str, log: Path, env: dict[str, str] | None = None
) -> tuple[str, dict[str, str]]:
    """Run tasks that succeed, fail, time out and have a failing hook; return the whole log."""
    url = f"redis://:{PASSWORD}@127.0.0.1:{server.port}/0"
    cluster = ClusterProcess(
        [
            "--redis-url",
            url,
            "--queue",
            queue,
            "--result-namespace",
            queue,
            "--status-namespace",
            queue,
            "--workers",
            "2",
            "--timeout",
            "1",
            "--retry",
            "12",
            "--import",
            "tests.faults.tasks",
            "--log-level",
            "debug",
            "--json-logs",
        ],
        log,
        env,
    )
    try:
        cluster.wait_for('"cluster.started"')
        with Producer(url, queue, namespace=queue) as producer:
            ids = {
                "echo": producer.enqueue(tasks.echo_secret, CARD, hook=tasks.leaky_hook),
                "fail": producer.enqueue(tasks.fail_with_secret, CARD),
                "late": producer.enqueue(tasks.overrun_with_secret, CARD, 30),
            }
            records = {name: producer.fetch(i, wait=30) for name, i in ids.items()}
            cluster.wait_for('"hook.failed"')
    finally:
        code, text = cluster.stop()
    assert code == 0, text
    assert all(r is not None for r in records.values()), records
    assert records["echo"].result == tasks.echo_secret(CARD)  # type: ignore[union-attr]
    assert "timed out" in records["late"].result  # type: ignore[union-attr]
    return text, {"result": tasks.echo_secret(CARD)}


@pytest.fixture
def locked_redis(redis_factory: Callable[..., RedisServer]) -> RedisServer:
    server = redis_factory()
    client = server.client()
    client.config_set("requirepass", PASSWORD)
    client.close()
    return server


def test_logs_hold_no_arguments_results_or_passwords_by_default(
    locked_redis: RedisServer, queue_name: str, tmp_path: Path
) -> None:
    text, secrets = _run_cluster(locked_redis, queue_name, tmp_path / "cluster.log")
    # Everything was logged that could be: worker processes' lines, each outcome, at debug.
    assert text.count('"worker.started"') >= 2
    for event in ("task.finished", "task.failed", "task.timed_out", "hook.failed"):
        assert f'"{event}"' in text, event
    assert f"redis://:***@127.0.0.1:{locked_redis.port}/0" in text  # the URL, masked
    assert CARD not in text
    assert secrets["result"] not in text
    assert PASSWORD not in text
    assert os.environ["Q_SECRET_KEY"] not in text
    assert '"error": "ValueError"' in text  # a failure names its type, not its message


def test_log_args_lets_arguments_and_results_into_the_logs(
    locked_redis: RedisServer, queue_name: str, tmp_path: Path
) -> None:
    text, secrets = _run_cluster(
        locked_redis, queue_name, tmp_path / "cluster.log", env={"Q_LOG_ARGS": "true"}
    )
    assert CARD in text  # the args of task.finished and the failure's message
    assert secrets["result"] in text
    assert PASSWORD not in text  # never the password, whatever the setting


@pytest.mark.parametrize(
    ("settings", "warning"),
    [
        ({"appendonly": False}, "has appendonly=no"),
        ({"extra": ["--maxmemory-policy", "allkeys-lru"]}, "has maxmemory-policy=allkeys-lru"),
    ],
    ids=["appendonly-off", "evicting"],
)
def test_the_cluster_warns_at_start_up_about_a_redis_that_could_lose_tasks(
    redis_factory: Callable[..., RedisServer],
    queue_name: str,
    tmp_path: Path,
    settings: dict[str, object],
    warning: str,
) -> None:
    risky = redis_factory(**settings)
    cluster = ClusterProcess(
        ["--redis-url", risky.url, "--queue", queue_name, "--workers", "1", "--json-logs"],
        tmp_path / "cluster.log",
    )
    try:
        cluster.wait_for('"cluster.started"')
    finally:
        code, text = cluster.stop()
    assert code == 0, text
    [line] = [line for line in text.splitlines() if '"redis.settings"' in line]
    assert warning in line and '"level": "warning"' in line


def test_no_warning_about_a_safe_redis(
    redis_factory: Callable[..., RedisServer], queue_name: str, tmp_path: Path
) -> None:
    safe = redis_factory()  # appendonly yes, maxmemory-policy noeviction
    cluster = ClusterProcess(
        ["--redis-url", safe.url, "--queue", queue_name, "--workers", "1", "--json-logs"],
        tmp_path / "cluster.log",
    )
    try:
        cluster.wait_for('"cluster.started"')
    finally:
        code, text = cluster.stop()
    assert code == 0 and '"redis.settings' not in text, text
