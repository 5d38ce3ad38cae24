"""Producer: the non-Django enqueue and result API (qcore + qredis only)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from qcore import Codec, ConfigError, Signer, TaskMessage, TaskResult
from qredis import Producer


@pytest.fixture
def producer(redis_url: str, queue_name: str, secret: str) -> Iterator[Producer]:
    p = Producer(redis_url, queue=queue_name, secret=secret, namespace=queue_name)
    yield p
    p.close()


def take(producer: Producer) -> tuple[TaskMessage, int]:
    [d] = producer.transport.fetch("test", count=1, timeout=5)
    producer.transport.ack([d])
    return producer.codec.decode_message(d.payload), d.max_attempts


def finish(producer: Producer, message: TaskMessage, result: object, ok: bool = True) -> None:
    producer.store.save_many([TaskResult.from_message(message, result=result, success=ok)])


def test_enqueue_signs_a_message_for_the_cluster(producer: Producer, secret: str) -> None:
    task_id = producer.enqueue("math.copysign", 2, -1, hook="math.floor", group="g", x=1)
    assert len(task_id) == 32
    message, _ = take(producer)
    assert (message.id, message.func, message.args, message.kwargs) == (
        task_id,
        "math.copysign",
        (2, -1),
        {"x": 1},
    )
    assert (message.hook, message.group) == ("math.floor", "g")
    # the cluster, which knows only the secret, can read it
    assert Codec(Signer.from_secret(secret)).decode_message(producer.codec.encode(message))


def test_options_never_collide_with_the_tasks_kwargs(producer: Producer) -> None:
    producer.enqueue("f.g", q_options={"timeout": 5, "save": False}, timeout="mine", group="g")
    message, _ = take(producer)
    assert message.kwargs == {"timeout": "mine"}  # named in q_options: the task's own
    assert message.options.timeout == 5 and message.options.save is False
    assert message.group == "g"


def test_q_options_task_name(producer: Producer) -> None:
    task_id = producer.enqueue("f.g", q_options={"task_name": "nightly-report"})
    message, _ = take(producer)
    assert message.name == "nightly-report" and message.id == task_id


def test_q_options_win_over_keywords(producer: Producer) -> None:
    producer.enqueue("f.g", group="kw", q_options={"group": "opt", "max_attempts": 1})
    message, max_attempts = take(producer)
    assert message.group == "opt" and max_attempts == 1


def test_unknown_q_options_are_refused(producer: Producer) -> None:
    with pytest.raises(ConfigError, match="unknown q_options tiemout"):
        producer.enqueue("f.g", q_options={"tiemout": 5})


@pytest.mark.parametrize(
    "bad",
    [
        {"group": "g" * 101},
        {"timeout": 0},
        {"q_options": {"task_name": ""}},
        {"priority": 101},
        {"priority": "urgent"},
        {"q_options": {"priority": -101}},
    ],
)
def test_a_bad_option_queues_nothing(producer: Producer, bad: dict) -> None:
    with pytest.raises(ConfigError):
        producer.enqueue("f.g", **bad)
    if "q_options" not in bad:
        with pytest.raises(ConfigError):
            producer.enqueue_many("f.g", [1, 2], **bad)
    assert producer.transport.queue_size() == producer.transport.delayed_size() == 0


def test_countdown_and_eta_delay_the_task(producer: Producer) -> None:
    start = time.monotonic()
    producer.enqueue("f.g", countdown=0.4)
    assert producer.transport.delayed_size() == 1
    take(producer)
    assert time.monotonic() - start >= 0.39
    producer.enqueue("f.g", eta=time.time() + 3600)
    assert producer.transport.delayed_size() == 1
    with pytest.raises(ConfigError, match="not both"):
        producer.enqueue("f.g", eta=time.time(), countdown=1)


def test_priority_travels_to_the_transport(producer: Producer) -> None:
    low = producer.enqueue_many("f.g", [1, 2], priority=-5)
    plain = producer.enqueue("f.g")
    high = producer.enqueue("f.g", priority=5, countdown=0.2)
    top = producer.enqueue("f.g", q_options={"priority": 100})
    assert producer.transport.level_sizes() == {100: 1, 0: 1, -5: 2}
    time.sleep(0.3)  # the delayed one is due, and keeps its priority
    order = [take(producer)[0] for _ in range(5)]
    assert [m.id for m in order] == [top, high, plain, *low]
    assert [m.options.priority for m in order] == [100, 5, None, -5, -5]


def test_max_attempts_travels_to_the_transport(producer: Producer) -> None:
    producer.enqueue("f.g", max_attempts=7)
    message, max_attempts = take(producer)
    assert max_attempts == 7 and message.options.max_attempts == 7


def test_result_and_fetch(producer: Producer) -> None:
    task_id = producer.enqueue("math.floor", 4.5)
    assert producer.result(task_id) is None and producer.fetch(task_id) is None
    message, _ = take(producer)
    finish(producer, message, 4)
    assert producer.result(task_id) == 4
    assert producer.fetch(message.name).result == 4  # type: ignore[union-attr]


def test_result_waits_in_seconds(producer: Producer) -> None:
    task_id = producer.enqueue("math.floor", 4.5)
    message, _ = take(producer)
    saver = threading.Timer(0.2, finish, (producer, message, 4))
    saver.start()
    assert producer.result(task_id, wait=5) == 4
    saver.join()
    assert producer.result("0" * 32, wait=0.1) is None


def test_a_failure_result_is_the_error_text(producer: Producer) -> None:
    task_id = producer.enqueue("math.floor", "x")
    message, _ = take(producer)
    finish(producer, message, "TypeError: must be real number", ok=False)
    assert producer.result(task_id) == "TypeError: must be real number"
    assert producer.fetch(task_id).success is False  # type: ignore[union-attr]


def test_enqueue_many(producer: Producer) -> None:
    ids = producer.enqueue_many("math.floor", [1.5, (2.5,), 3.5], group="bulk", max_attempts=2)
    assert len(ids) == len(set(ids)) == 3
    got = producer.transport.fetch("c", count=5)
    assert [d.task_id for d in got] == ids
    messages = [producer.codec.decode_message(d.payload) for d in got]
    assert [m.args for m in messages] == [(1.5,), (2.5,), (3.5,)]
    assert {m.group for m in messages} == {"bulk"} and {d.max_attempts for d in got} == {2}


def test_the_secret_comes_from_the_environment(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("Q_SECRET_KEY", raising=False)
    with pytest.raises(ConfigError, match="Q_SECRET_KEY"):
        Producer(redis_url)
    monkeypatch.setenv("Q_SECRET_KEY", "environment-secret-0123456789-abcdefgh")
    with Producer(redis_url) as p:
        assert (
            p.codec.signer.key_ids
            == Codec(Signer.from_secret("environment-secret-0123456789-abcdefgh")).signer.key_ids
        )


def test_enqueue_is_one_round_trip(producer: Producer, redis_client: object) -> None:
    producer.enqueue("f.g")  # loads the script, opens the connection
    redis_client.config_resetstat()  # type: ignore[attr-defined]
    producer.enqueue("f.g", 1, 2)
    stats = redis_client.info("commandstats")  # type: ignore[attr-defined]
    assert stats["cmdstat_evalsha"]["calls"] == 1


def test_a_callable_task_and_a_shared_connection(redis_url: str, secret: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    p = Producer(connection=client, queue="callables", secret=secret)
    assert p.transport.client is client and p.store._conn.client is client
    p.enqueue(lambda x: x * 2, 21)
    message, _ = take(p)
    assert message.func(*message.args) == 42  # type: ignore[operator]
    p.close()
    assert client.ping()  # the caller's client stays open
    client.close()


def test_each_task_enqueued_is_announced_on_the_producers_bus(
    redis_url: str, queue_name: str, secret: str
) -> None:
    from qcore.events import EventBus, TaskEnqueued

    bus = EventBus()
    seen: list[TaskEnqueued] = []
    bus.subscribe(TaskEnqueued, seen.append)
    with Producer(redis_url, queue_name, secret=secret, events=bus) as producer:
        one = producer.enqueue("math.copysign", 2, -1, timeout=5)
        many = producer.enqueue_many("math.floor", [1.5, 2.5])
        assert producer.transport.queue_size() == 3
    assert [e.task_id for e in seen] == [one, *many]
    assert all(e.queue == queue_name for e in seen)
    assert seen[0].message.args == (2, -1) and seen[0].message.options.timeout == 5
    assert [e.message.args for e in seen[1:]] == [(1.5,), (2.5,)]
