"""What a producer is told when its task cannot be queued: never a silent drop, never half a
task in Redis."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
import redis

from qcore import PayloadTooLarge
from qredis import Producer, TransportConnectionError, TransportOutOfMemory
from tests.cluster.support import Bench
from tests.faults import tasks
from tests.faults.support import Effects, assert_exactly_once, wait_drained
from tests.support.servers import RedisServer

PASSWORD = "pw-never-in-an-error-9f3c"


def _commands(client: redis.Redis) -> int:
    """Commands the server processed so far (this INFO call included)."""
    return int(client.info("stats")["total_commands_processed"])


@pytest.mark.slow
def test_enqueue_with_redis_down_raises_a_clear_connection_error(
    redis_factory: Callable[..., RedisServer], queue_name: str
) -> None:
    server = redis_factory()
    admin = server.client()
    admin.config_set("requirepass", PASSWORD)  # until the restart below
    admin.close()
    url = f"redis://:{PASSWORD}@127.0.0.1:{server.port}/0"
    producer = Producer(url, queue_name)
    assert producer.queue_size() == 0
    server.stop(kill=True)
    errors: dict[str, BaseException] = {}

    def attempt(name: str, call: Callable[[], object]) -> None:
        try:
            call()
        except BaseException as exc:
            errors[name] = exc

    # Both wait out a producer's retries (about 2 s: retry_for) at the same time.
    calls: dict[str, Callable[[], object]] = {
        "enqueue": lambda: producer.enqueue(tasks.noop, 1),
        "enqueue_many": lambda: producer.enqueue_many(tasks.noop, range(10)),
    }
    threads = [threading.Thread(target=attempt, args=item) for item in calls.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert set(errors) == {"enqueue", "enqueue_many"}
    for error in errors.values():
        assert isinstance(error, TransportConnectionError), repr(error)
        text = str(error)
        assert f"cannot reach Redis at redis://:***@127.0.0.1:{server.port}/0" in text
        assert PASSWORD not in text and PASSWORD not in "".join(getattr(error, "__notes__", []))
    server.start()
    client = server.client(password=PASSWORD)
    assert client.dbsize() == 0  # nothing was written behind the caller's back
    client.close()
    producer.close()


def test_redis_out_of_memory_reaches_the_caller_and_leaves_no_half_task(
    own_redis: RedisServer, own_bench: Bench, own_fx: Effects
) -> None:
    admin = own_redis.client()
    used = int(admin.info("memory")["used_memory"])
    # noeviction: past maxmemory, writes are refused. A pipelined window of chunks counts
    # against it while Redis reads it, so the headroom must hold a few windows: small chunks
    # keep the test (and the tasks it then runs) small.
    admin.config_set("maxmemory", used + 512 * 1024)
    own_bench.producer.transport.chunk_size = 100
    calls = [(*own_fx.args(f"t{i}"), "v" * 200) for i in range(10_000)]
    with pytest.raises(TransportOutOfMemory, match="out of memory") as bulk:
        own_bench.producer.enqueue_many(tasks.counted, calls)
    queued = own_bench.transport.queue_size()
    # Whole chunks went in before Redis filled up; the error says how many.
    assert 0 < queued < len(calls) and queued % 100 == 0
    assert f"{queued} task(s)" in "".join(bulk.value.__notes__)
    with pytest.raises(redis.exceptions.OutOfMemoryError):
        for i in range(100):
            admin.set(f"filler:{i}", b"f" * 256 * 1024)
    with pytest.raises(TransportOutOfMemory, match="nothing of the refused call was written"):
        own_bench.producer.enqueue(tasks.counted, *own_fx.args("single"), "v")
    k = own_bench.transport.keys
    assert admin.llen(k.queue) == queued and admin.hlen(k.msg) == 0  # no payload without its id
    admin.config_set("maxmemory", 0)
    admin.delete(*(f"filler:{i}" for i in range(100)))
    # Every task that was queued is whole (its signed payload verifies) ...
    tags: dict[str, str] = {}
    for entry in admin.lrange(k.queue, 0, -1):
        task_id, _, payload = entry[1:].split(b"\0", 2)
        message = own_bench.producer.codec.decode_message(payload)
        assert message.id == task_id.decode()
        tags[message.args[2]] = message.id
    assert len(tags) == queued
    # ... and a cluster runs each exactly once.
    with own_bench.cluster(workers=2, start_method="fork"):
        wait_drained(own_bench, queued)
    assert_exactly_once(own_bench, own_fx, tags)
    admin.close()


def test_fifty_megabytes_of_arguments_are_refused_before_anything_reaches_redis(
    own_redis: RedisServer, own_bench: Bench
) -> None:
    admin = own_redis.client()
    own_bench.producer.transport.ping()  # connected, so any later command would be counted
    big = b"x" * (50 * 1024 * 1024)
    before = _commands(admin)
    with pytest.raises(PayloadTooLarge, match="over the limit of 16777216 bytes") as single:
        own_bench.producer.enqueue(tasks.noop, big)
    assert "pass large data by reference" in str(single.value)
    with pytest.raises(PayloadTooLarge):
        own_bench.producer.enqueue_many(tasks.noop, [1, 2, (big,), 3])
    assert _commands(admin) == before + 1  # only our second INFO: no command was sent
    assert admin.dbsize() == 0
    admin.close()
