"""Redis down, unreachable, black-holed or locked down: every caller gets one clear error in a
bounded time, and a cluster says what is wrong before it starts any worker.

A black hole is a listening socket that accepts connections and never answers (a tiny TCP
server in the test): connecting works, every reply times out. A refused connection is a port
nothing listens on. Permissions are a Redis 7 ACL user made with ``ACL SETUSER`` on the test's
own server.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from qredis import Producer, RedisTransport, TransportConnectionError
from qredis.permissions import acl_rule
from tests.faults import tasks
from tests.faults.support import ClusterProcess
from tests.support.servers import RedisServer, free_port


class BlackHole:
    """Accepts TCP connections on 127.0.0.1 and never reads or answers."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self._stop = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.held.append(conn)  # kept open, never read

    @property
    def url(self) -> str:
        return f"redis://:hole-pw-0b7e@127.0.0.1:{self.port}/0"

    def close(self) -> None:
        self._stop = True
        self._thread.join(2)
        for conn in self.held:
            conn.close()
        self.sock.close()


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    hole = BlackHole()
    yield hole
    hole.close()


def _timed(call: Callable[[], object]) -> tuple[float, BaseException]:
    began = time.monotonic()
    with pytest.raises(TransportConnectionError) as caught:
        call()
    return time.monotonic() - began, caught.value


def _one_clear_error(error: BaseException, where: str) -> None:
    text = str(error)
    assert text.startswith(f"cannot reach Redis at {where}"), text
    assert "check that it runs" in text
    # One error, not redis-py's chain of tracebacks (its error stays in __context__).
    assert error.__cause__ is None and error.__suppress_context__


# Guarantee (issue 11, item 7): a producer's enqueue against a Redis that refuses fails in
# about 2 s, against one that never answers in about 5 s, with one clear error; both bounds
# are settings.
@pytest.mark.slow
def test_enqueue_fails_within_its_bound_when_redis_refuses_or_never_answers(
    black_hole: BlackHole, queue_name: str
) -> None:
    refused = f"redis://:pw-9c1d@127.0.0.1:{free_port()}/0"
    with Producer(refused, queue_name) as producer:
        took, error = _timed(lambda: producer.enqueue(tasks.noop, 1))
    assert 1.5 <= took < 4.0, took
    _one_clear_error(error, refused.replace("pw-9c1d", "***"))
    assert "refused or dropped" in str(error) and "pw-9c1d" not in str(error)

    with Producer(black_hole.url, queue_name) as producer:
        took, error = _timed(lambda: producer.enqueue(tasks.noop, 1))
        assert 4.5 <= took < 8.0, took
        _one_clear_error(error, black_hole.url.replace("hole-pw-0b7e", "***"))
        assert "did not answer" in str(error)
        took, _ = _timed(lambda: producer.enqueue_many(tasks.noop, range(10)))
        assert took < 8.0, took

    with Producer(black_hole.url, queue_name, retry_for=0.2, socket_timeout=1.0) as producer:
        took, _ = _timed(lambda: producer.enqueue(tasks.noop, 1))
    assert took < 2.5, took


def _cluster_args(url: str, queue: str, *extra: str) -> list[str]:
    return [
        "--redis-url",
        url,
        "--queue",
        queue,
        "--result-namespace",
        queue,
        "--status-namespace",
        queue,
        "--workers",
        "1",
        "--import",
        "tests.faults.tasks",
        "--json-logs",
        *extra,
    ]


# Guarantee (issue 11, item 7): a cluster started against a Redis it cannot reach says so at
# once, one line per backoff step, starts no worker and logs no cluster.started until Redis
# answers; then it runs. SIGTERM while it waits stops it at once.
@pytest.mark.slow
def test_a_cluster_waits_for_an_unreachable_redis_saying_so_and_starts_once_it_answers(
    redis_binary: str, queue_name: str, tmp_path: Path
) -> None:
    server = RedisServer(redis_binary)  # not started yet: its port refuses
    cluster = ClusterProcess(_cluster_args(server.url, queue_name), tmp_path / "c.log")
    try:
        cluster.wait_for('"redis.unreachable"', timeout=60)
        # At once: timed from the cluster's own log (a loaded machine may take long to start
        # the interpreter), not from the test's clock.
        assert (
            _logged_at(cluster, "redis.unreachable") - _logged_at(cluster, "cluster.starting") < 2
        )
        deadline = time.monotonic() + 30
        while cluster.text().count('"redis.unreachable"') < 3:
            assert time.monotonic() < deadline, cluster.text()
            time.sleep(0.05)
        text = cluster.text()
        assert '"cluster.started"' not in text and '"worker.started"' not in text, text
        server.start()
        cluster.wait_for('"cluster.started"', timeout=30)
        with Producer(server.url, queue_name, namespace=queue_name) as producer:
            task_id = producer.enqueue(tasks.counted, server.url, "fx", "a", 7)
            assert producer.result(task_id, wait=30) == 7
    finally:
        code, text = cluster.stop()
        server.close()
    assert code == 0, text

    # SIGTERM while waiting for Redis: out at once, exit 0, nothing started.
    cluster = ClusterProcess(
        _cluster_args(f"redis://127.0.0.1:{free_port()}/0", queue_name), tmp_path / "d.log"
    )
    cluster.wait_for('"redis.unreachable"', timeout=60)
    began = time.monotonic()
    code, text = cluster.stop(timeout=10)
    assert code == 0 and time.monotonic() - began < 5, text
    assert '"worker.started"' not in text


# Guarantee (issue 11, item 7): with --fail-fast (Q_CLUSTER["fail_fast"]) a cluster that
# cannot reach Redis exits non-zero at once with one message, against a refusing Redis and
# against a black hole alike.
def test_fail_fast_exits_non_zero_at_once_when_redis_cannot_be_reached(
    black_hole: BlackHole, queue_name: str, tmp_path: Path
) -> None:
    for url in (f"redis://127.0.0.1:{free_port()}/0", black_hole.url):
        cluster = ClusterProcess(_cluster_args(url, queue_name, "--fail-fast"), tmp_path / "f.log")
        cluster.process.wait(60)
        code, text = cluster.stop()
        assert code != 0, (code, text)
        assert "qcluster: cannot reach Redis at" in text and "fail_fast" in text, text
        # At once: the first failure ends it, no backoff step is taken.
        assert '"redis.unreachable"' not in text and '"cluster.started"' not in text, text
        assert "Traceback" not in text, text
        assert "hole-pw-0b7e" not in text


def _logged_at(cluster: ClusterProcess, event: str) -> float:
    """When the cluster logged ``event`` first (its JSON line's timestamp), epoch seconds."""
    import datetime as dt
    import json

    for line in cluster.text().splitlines():
        if f'"{event}"' in line:
            stamp = json.loads(line)["timestamp"].replace("Z", "+00:00")
            return dt.datetime.fromisoformat(stamp).timestamp()
    raise AssertionError(f"{event} not logged:\n{cluster.text()}")


def _acl_user(server: RedisServer, name: str, rule: str) -> str:
    admin = server.client()
    admin.execute_command("ACL", "SETUSER", name, "reset", *rule.split())
    admin.close()
    return f"redis://{name}:{name}-pw-0123@127.0.0.1:{server.port}/0"


# Guarantee (issue 11, item 8): an ACL user without a command Q needs makes the cluster refuse
# to start, before any worker, with one message naming every missing command; a user without
# CONFIG GET starts, with a warning that says it could not check.
def test_a_redis_user_missing_commands_q_needs_is_refused_at_start_naming_them(
    redis_factory: Callable[..., RedisServer], queue_name: str, tmp_path: Path
) -> None:
    server = redis_factory()
    rule = acl_rule("locked-pw-0123").replace("+evalsha ", "").replace("+bzpopmin ", "")
    url = _acl_user(server, "locked", rule)
    cluster = ClusterProcess(_cluster_args(url, queue_name), tmp_path / "acl.log")
    cluster.process.wait(30)
    code, text = cluster.stop()
    assert code != 0, text
    [message] = [line for line in text.splitlines() if line.startswith("qcluster: ")]
    assert "may not do what the cluster needs" in message, text
    assert "EVALSHA" in message and "BZPOPMIN" in message, message
    assert '"worker.started"' not in text and '"cluster.started"' not in text, text
    assert "locked-pw-0123" not in text

    # The transport says the same to a caller who asks; nothing was run to find out.
    transport = RedisTransport(queue_name, url=url)
    assert transport.check_permissions() == ["BZPOPMIN", "EVALSHA"]
    transport.close()
    assert server.client().dbsize() == 0

    url = _acl_user(server, "noconfig", acl_rule("noconfig-pw-0123").replace("+config|get", ""))
    cluster = ClusterProcess(_cluster_args(url, queue_name), tmp_path / "noconfig.log")
    try:
        cluster.wait_for('"cluster.started"', timeout=30)
    finally:
        code, text = cluster.stop()
    assert code == 0, text
    [warning] = [line for line in text.splitlines() if '"redis.settings"' in line]
    assert "could not check appendonly and maxmemory-policy (no permission)" in warning
    assert "CONFIG is disabled" not in text


# Guarantee (issue 11, item 7): on a Django site, async_task, qinfo and the admin's Queue page
# answer within the same bounds (Q_CLUSTER["producer_retry"] / ["producer_timeout"]) against a
# Redis that never answers; passwords stay masked in what they say.
@pytest.mark.slow
@pytest.mark.django_db
def test_async_task_qinfo_and_the_admin_queue_page_answer_within_the_bound(
    black_hole: BlackHole, settings: Any, admin_client: Any, queue_name: str
) -> None:
    from django.core.management import CommandError, call_command
    from django.urls import reverse

    from qdjango import async_task

    settings.Q_CLUSTER = {"name": queue_name, "redis": black_hole.url, "producer_timeout": 3.0}
    took, error = _timed(lambda: async_task(tasks.noop, 1))
    assert 2.5 <= took < 5.0, took
    _one_clear_error(error, black_hole.url.replace("hole-pw-0b7e", "***"))

    began = time.monotonic()
    with pytest.raises(CommandError, match="cannot reach Redis") as caught:
        call_command("qinfo")
    assert time.monotonic() - began < 5.0
    assert "hole-pw-0b7e" not in str(caught.value)

    began = time.monotonic()
    page = admin_client.get(reverse("admin:qdjango_queuestatus_changelist"))
    assert time.monotonic() - began < 5.0
    text = page.content.decode()
    assert page.status_code == 200 and "cannot reach Redis" in text, text[-2000:]
    assert "hole-pw-0b7e" not in text


# Guarantee (issue 11, item 7): SIGTERM stops a running cluster within its grace plus a few
# seconds while Redis is down (the status, the release of what its workers hold and the
# deregistration each give up at once instead of riding out the pools' retries); the task it
# could not put back stays in flight in Redis, where a reaper finds it once Redis returns.
@pytest.mark.slow
def test_sigterm_stops_a_cluster_within_its_grace_while_redis_is_down(
    redis_factory: Callable[..., RedisServer], queue_name: str, tmp_path: Path
) -> None:
    server = redis_factory()
    fx_key = f"fx:{queue_name}"
    grace = 2.0
    args = _cluster_args(server.url, queue_name, "--grace", str(grace))
    args[args.index("--workers") + 1] = "2"
    cluster = ClusterProcess(args, tmp_path / "down.log")
    try:
        cluster.wait_for('"cluster.started"', timeout=60)
        with Producer(server.url, queue_name, namespace=queue_name) as producer:
            producer.enqueue(tasks.hang, server.url, fx_key, "held")
        client = server.client()
        assert client.blpop([f"{fx_key}:started"], timeout=30) is not None
        client.close()
        server.stop(kill=True)
        time.sleep(1.0)  # the cluster notices: its status and heartbeats start failing
        began, signalled = time.monotonic(), time.time()
        code, text = cluster.stop(timeout=120)
        exited = time.monotonic() - began
    finally:
        if cluster.process.poll() is None:
            cluster.stop()
    assert code == 0, text
    # From SIGTERM to the sentinel's own last line (its clock is this host's): the stop itself.
    # The interpreter's exit after it, slow on a loaded machine, is bounded loosely apart; 85 s
    # (the pools' retries ridden out) fails either bound.
    took = _logged_at(cluster, "cluster.stopped") - signalled
    assert took < grace + 6, (took, text[-3000:])
    assert exited < grace + 30, (exited, text[-3000:])
    # Nothing lost: the task it held is still in flight, for a reaper to take back.
    server.start()
    transport = RedisTransport(queue_name, url=server.url)
    assert transport.inflight_size() + transport.queue_size() == 1
    transport.close()
