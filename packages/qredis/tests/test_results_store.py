"""RedisResultStore and ResultNotifier: upserts, names, TTLs, waits woken by Redis."""

from __future__ import annotations

import multiprocessing
import pickle
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis

from qcore import (
    BadSignature,
    Codec,
    ConfigError,
    ResultStore,
    Signer,
    TaskMessage,
    TaskResult,
    humanize,
)
from qcore.testing.contract import ResultStoreContract, wait_until
from qredis import RedisResultStore, ResultNotifier

CODEC = Codec(Signer("result-tests-key-0123456789abcdef"))


def record(success: bool = True, result: object = 42, **changes: object) -> TaskResult:
    message = TaskMessage.new("math.floor", (4.2,))
    rec = TaskResult.from_message(message, result=result, success=success)
    return replace(rec, **changes) if changes else rec  # type: ignore[arg-type]


def wait_for_waiter(store: RedisResultStore | ResultNotifier) -> None:
    """Return once someone is subscribed to the store's channel (so a save will wake them)."""
    client = store._conn.client
    channel = store.notifier.channel if isinstance(store, RedisResultStore) else store.channel
    wait_until(lambda: client.pubsub_numsub(channel)[0][1] >= 1)


@pytest.fixture
def store(redis_url: str, queue_name: str) -> Iterator[RedisResultStore]:
    s = RedisResultStore(redis_url, namespace=queue_name, codec=CODEC, ttl=600)
    yield s
    s.close()


def test_is_a_result_store(store: RedisResultStore) -> None:
    assert isinstance(store, ResultStore)


def test_save_and_get_by_id_and_by_name(store: RedisResultStore) -> None:
    a, b = record(result="a"), record(result="b")
    store.save_many([a, b])
    assert store.get(a.id) == a
    assert store.get(b.name) == b
    assert store.get("0" * 32) is None
    assert store.get("no-such-name") is None


def test_save_many_is_one_round_trip(store: RedisResultStore, redis_client: redis.Redis) -> None:
    store.save_many([record()])  # loads the script
    redis_client.config_resetstat()
    store.save_many([record() for _ in range(50)])
    stats = redis_client.info("commandstats")
    assert stats["cmdstat_evalsha"]["calls"] == 1
    # (SET, GET and PUBLISH run inside that one script call)
    assert stats["cmdstat_publish"]["calls"] == 1


def test_records_expire(store: RedisResultStore, redis_client: redis.Redis) -> None:
    rec, named = record(), record(name="nightly-report")
    store.save_many([rec, named])
    for key in (store._keys.records(rec.name), store._keys.records(humanize(named.id))):
        assert 590_000 < redis_client.pttl(key) <= 600_000
    assert 590_000 < redis_client.pttl(store._keys.name("nightly-report")) <= 600_000
    # A name derived from the id needs no index: the record's key is found from either.
    assert not redis_client.exists(store._keys.name(rec.name))


def test_saving_twice_leaves_one_record(store: RedisResultStore, redis_client: redis.Redis) -> None:
    rec = record()
    store.save_many([rec])
    once = redis_client.get(store._keys.records(rec.name))
    store.save_many([rec, rec])
    assert store.get(rec.id) == rec
    keys = list(redis_client.scan_iter(match=f"{store._keys.prefix}:*"))
    assert keys == [store._keys.records(rec.name).encode()]
    assert len(redis_client.get(keys[0])) == len(once)  # one entry, not three


def test_a_no_op_record_costs_at_most_300_bytes_of_redis(
    store: RedisResultStore, redis_client: redis.Redis
) -> None:
    message = TaskMessage.new("tools.bench.peers.tasks.common.add", (1, 2))
    rec = TaskResult.from_message(message, result=3, success=True, cluster="bench-0123456789")
    store.save_many([rec])
    keys = list(redis_client.scan_iter(match=f"{store._keys.prefix}:*"))
    assert len(keys) == 1  # no name index for a name derived from the id
    assert redis_client.memory_usage(keys[0], samples=0) <= 300
    assert store.get(rec.id) == rec and store.get(rec.name) == rec


def _same_name(task_id: str) -> str:
    """Another id with the same humanized name: two bytes of one run (whose XOR picks a word)
    flipped alike leave that XOR, so the name, as it was."""
    raw = bytearray(bytes.fromhex(task_id))
    raw[0] ^= 0x5A
    raw[1] ^= 0x5A
    return raw.hex()


def test_tasks_whose_ids_give_the_same_name_keep_their_own_records(
    store: RedisResultStore,
) -> None:
    first = record(result="first", started=100.0)
    second = replace(record(result="second", started=200.0), id=_same_name(first.id))
    second = replace(second, name=humanize(second.id))
    assert first.id != second.id and first.name == second.name
    store.save_many([second])
    store.save_many([first])
    assert store.get(first.id) == first and store.get(second.id) == second
    assert store.get(first.name) == second  # the most recently enqueued of the name
    failed = replace(first, success=False, result="Traceback: worker lost")
    store.save_many([failed])  # a failure never replaces a success, collision or not
    assert store.get(first.id) == first
    assert store.delete(first.id) and not store.delete(first.id)
    assert store.get(first.id) is None and store.get(second.id) == second


def test_a_task_named_by_its_producer_is_found_by_that_name(store: RedisResultStore) -> None:
    old = record(result="old", name="nightly-report", started=100.0)
    new = record(result="new", name="nightly-report", started=200.0)
    store.save_many([new, old])
    assert store.get("nightly-report") == new
    assert store.get(old.id) == old


def test_records_saved_by_an_earlier_version_are_still_read(
    store: RedisResultStore, redis_client: redis.Redis
) -> None:
    rec = record()
    redis_client.set(store._keys.record(rec.id), b"1" + CODEC.encode(rec))
    redis_client.set(store._keys.name(rec.name), f"{rec.started!r} {rec.id}")
    assert store.get(rec.id) == rec and store.get(rec.name) == rec
    assert store.delete(rec.id) and store.get(rec.id) is None


def test_the_run_time_is_kept_and_records_saved_without_one_still_read(
    store: RedisResultStore, redis_client: redis.Redis
) -> None:
    timed = record(run_time=0.00042)
    store.save_many([timed])
    read = store.get(timed.id)
    assert read is not None and read.run_time == 0.00042 and read.version == (2, 1)
    assert store.get(timed.name) == read
    # A record saved by a Q whose compact layout had no run time (a checked-in sample).
    sample = Path(__file__).parents[2] / "qcore/tests/wire/v2/compact-success.bin"
    old = Codec(Signer.from_secret("q-test-secret-key-0123456789abcdef"))
    earlier = RedisResultStore(connection=redis_client, namespace=store.namespace, codec=old)
    data = sample.read_bytes()
    rec = old.decode_result(data)
    earlier.save_many([rec])  # stored as it is written today: the same bytes as the sample
    assert data in redis_client.get(store._keys.records(humanize(rec.id)))
    got = earlier.get(rec.id)
    assert got == rec and got.run_time is None
    earlier.close()


def test_a_later_failure_never_replaces_a_success(store: RedisResultStore) -> None:
    ok = record(success=True, result=1)
    failed = replace(ok, success=False, result="Traceback: worker lost", attempt_count=2)
    store.save_many([ok])
    store.save_many([failed])
    assert store.get(ok.id) == ok


def test_a_later_success_replaces_a_failure(store: RedisResultStore) -> None:
    failed = record(success=False, result="boom")
    ok = replace(failed, success=True, result=7, attempt_count=2)
    store.save_many([failed])
    store.save_many([ok])
    assert store.get(failed.id) == ok


def test_a_name_resolves_to_the_latest_task(store: RedisResultStore) -> None:
    old = record(result="old", name="same-name-for-both", started=100.0)
    new = record(result="new", name="same-name-for-both", started=200.0)
    store.save_many([new])
    store.save_many([old])  # saved later, but enqueued earlier
    assert store.get("same-name-for-both") == new


def test_a_tampered_record_is_refused(store: RedisResultStore, redis_client: redis.Redis) -> None:
    rec = record()
    store.save_many([rec])
    key = store._keys.records(rec.name)
    raw = bytearray(redis_client.get(key))
    raw[-40] ^= 1
    redis_client.set(key, bytes(raw))
    with pytest.raises(BadSignature):
        store.get(rec.id)


def test_wait_returns_at_once_when_saved(store: RedisResultStore) -> None:
    rec = record()
    store.save_many([rec])
    assert store.wait(rec.id, 5) == rec


def test_wait_times_out_with_none(store: RedisResultStore) -> None:
    start = time.monotonic()
    assert store.wait("f" * 32, 0.3) is None
    assert 0.29 <= time.monotonic() - start < 2
    assert store.wait("f" * 32, 0) is None


def test_wait_is_woken_by_a_save_from_another_thread(store: RedisResultStore) -> None:
    rec = record()
    saved_at: list[float] = []

    def save() -> None:
        wait_for_waiter(store)
        saved_at.append(time.monotonic())
        store.save_many([record(), rec])

    saver = threading.Thread(target=save)
    saver.start()
    got = store.wait(rec.id, None)
    woke_at = time.monotonic()
    saver.join()
    assert got == rec
    assert woke_at - saved_at[0] < 0.2  # notified, not found by a periodic re-check


def test_wait_by_name(store: RedisResultStore) -> None:
    rec = record()
    timer = threading.Timer(0.2, store.save_many, ([rec],))
    timer.start()
    assert store.wait(rec.name, 5) == rec
    timer.join()


def _save_later(store: RedisResultStore, rec: TaskResult) -> None:
    wait_for_waiter(store)
    store.save_many([rec])


def test_wait_is_woken_by_a_save_from_another_process(store: RedisResultStore) -> None:
    rec = record()
    proc = multiprocessing.get_context("spawn").Process(target=_save_later, args=(store, rec))
    proc.start()
    try:
        assert store.wait(rec.id, 30) == rec
    finally:
        proc.join(30)
    assert proc.exitcode == 0


def test_a_pickled_store_reads_the_same_records(store: RedisResultStore) -> None:
    rec = record()
    store.save_many([rec])
    clone = pickle.loads(pickle.dumps(store))
    assert clone.get(rec.id) == rec
    clone.close()


def test_the_default_codec_comes_from_the_environment(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("Q_SECRET_KEY", raising=False)
    with pytest.raises(ConfigError, match="Q_SECRET_KEY"):
        RedisResultStore(redis_url)
    monkeypatch.setenv("Q_SECRET_KEY", "from-the-environment-0123456789-abcdefgh")
    RedisResultStore(redis_url).close()


# -- the notifier on its own (as qdjango's database store uses it) ---------------------------


@pytest.fixture
def notifier(redis_url: str, queue_name: str) -> Iterator[ResultNotifier]:
    n = ResultNotifier(redis_url, namespace=queue_name)
    yield n
    n.close()


def test_notifier_check_first_then_notice(notifier: ResultNotifier) -> None:
    box: dict[str, int] = {}
    calls = 0

    def check() -> int | None:
        nonlocal calls
        calls += 1
        return box.get("x")

    def deliver() -> None:
        wait_for_waiter(notifier)
        notifier.publish(["other"])  # a notice about someone else: no re-check
        box["x"] = 5
        notifier.publish(["a", "x"])

    t = threading.Thread(target=deliver)
    t.start()
    assert notifier.wait_for("x", 5, check) == 5
    t.join()
    assert calls == 3  # before subscribing, after subscribing, after the notice naming x


def test_notifier_closes_the_race_between_check_and_subscribe(notifier: ResultNotifier) -> None:
    box: dict[str, int] = {}
    calls = 0

    def check() -> int | None:
        nonlocal calls
        calls += 1
        if calls == 1:  # saved (and announced) right after the first look, before SUBSCRIBE
            box["x"] = 1
            notifier.publish(["x"])
            return None
        return box.get("x")

    start = time.monotonic()
    assert notifier.wait_for("x", 10, check) == 1
    assert time.monotonic() - start < 1


def test_notifier_does_not_leak_connections(
    notifier: ResultNotifier, redis_client: redis.Redis
) -> None:
    def clients() -> int:
        return int(redis_client.info("clients")["connected_clients"])

    notifier.wait_for("x", 0.01, lambda: None)
    before = clients()
    for _ in range(30):
        assert notifier.wait_for("x", 0.01, lambda: None) is None
    assert clients() <= before + 1


def test_notifier_publish_reports_listeners(notifier: ResultNotifier) -> None:
    assert notifier.publish([]) == 0
    assert notifier.publish(["nobody-listens"]) == 0


class TestRedisResultStoreContract(ResultStoreContract):
    @pytest.fixture
    def store(self, redis_url: str, queue_name: str) -> Iterator[RedisResultStore]:
        s = RedisResultStore(redis_url, namespace=queue_name, codec=CODEC, ttl=600)
        yield s
        s.close()
