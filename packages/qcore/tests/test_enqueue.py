"""The one enqueue path's reading of a call: Q's options apart from the task's own kwargs,
validated before anything is sent; a retry's message. Sending is tested on Redis
(packages/qredis/tests/test_producer.py) and from qdjango (its API and admin tests)."""

from __future__ import annotations

import time

import pytest

from qcore import (
    ConfigError,
    EventBus,
    TaskMessage,
    TaskOptions,
    TaskResult,
    UnknownOption,
    apply_q_options,
    batch_ids,
    build_message,
    codec_for,
    enqueue_many,
    new_id,
    retry_message,
    task_options,
)
from qcore.events import TaskEnqueued
from qcore.testing import MemoryTransport


def test_q_options_win_and_move_same_named_keywords_into_the_task() -> None:
    kwargs: dict[str, object] = {"x": 1}
    given = {"hook": None, "group": "g", "timeout": 5, "save": None}
    chosen = apply_q_options({"timeout": 9, "hook": "h.f"}, given, kwargs)
    assert chosen["timeout"] == 9 and chosen["hook"] == "h.f" and chosen["group"] == "g"
    # the keyword timeout=5 was the task's own argument; hook=None stays out of the task
    assert kwargs == {"x": 1, "timeout": 5}


def test_unknown_q_options_are_named_with_the_known_ones() -> None:
    with pytest.raises(UnknownOption, match=r"cached.*known options are") as info:
        apply_q_options({"cached": True}, {}, {})
    assert isinstance(info.value, ConfigError) and isinstance(info.value, TypeError)
    assert apply_q_options({"sync": True}, {"sync": None}, {}, known={"sync"}) == {"sync": True}


def test_task_options() -> None:
    assert task_options() is task_options()  # the shared default, no allocation per call
    assert task_options(timeout=3) == TaskOptions(timeout=3)
    before = time.time()
    eta = task_options(countdown=10).eta
    assert eta is not None and before + 10 <= eta <= time.time() + 10
    with pytest.raises(ConfigError, match="not both"):
        task_options(eta=1.0, countdown=1.0)


def test_build_message_reads_options_as_every_producer_does() -> None:
    kwargs = {"x": 1}
    message = build_message(
        "f.g",
        (1, 2),
        kwargs,
        timeout=5,
        group="g",
        q_options={"timeout": 9, "task_name": "nightly", "max_attempts": 2},
    )
    assert message.kwargs == {"x": 1, "timeout": 5}  # the keyword is the task's own now
    assert message.options == TaskOptions(timeout=9, max_attempts=2)
    assert (message.name, message.group, message.args) == ("nightly", "g", (1, 2))
    assert build_message("f.g").options is task_options()  # nothing set, nothing allocated


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"group": "g" * 101}, "group must be"),
        ({"group": 3}, "group must be"),
        ({"task_name": ""}, "task_name must be"),
        ({"timeout": -1}, "timeout must be"),
        ({"max_attempts": 0}, "max_attempts must be"),
        ({"retried_from": ""}, "retried_from must be"),
        ({"q_options": {"tiemout": 1}}, "unknown q_options tiemout"),
        ({"priority": 101}, r"priority must be from -100 to 100 \(higher runs first\), not 101"),
        ({"priority": -101}, "priority must be from -100 to 100"),
        ({"priority": 2.5}, "priority must be an integer from -100 to 100"),
        ({"priority": True}, "priority must be an integer"),
        ({"priority": False}, "priority must be an integer"),
        ({"q_options": {"priority": "high"}}, "priority must be an integer"),
    ],
)
def test_bad_options_are_refused_with_their_name(options: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        build_message("f.g", **options)


def test_a_priority_travels_only_when_it_is_not_the_default() -> None:
    assert build_message("f.g", priority=0).options is task_options()
    message = build_message("f.g", q_options={"priority": -100})
    assert message.options.priority == -100
    assert message.options.to_mapping() == {"priority": -100}
    record = TaskResult.from_message(message, result="x", success=False)
    assert retry_message(record).options.priority == -100  # a retry keeps it


def test_a_retry_is_the_task_as_it_was_sent_under_a_new_id() -> None:
    sent = build_message(
        "f.g", (1,), {"timeout": 7}, hook="h.k", group="g", timeout=30, max_attempts=2, eta=1.0
    )
    record = TaskResult.from_message(sent, result="ValueError: no", success=False)
    retry = retry_message(record)
    assert isinstance(retry, TaskMessage) and retry.id != sent.id
    assert (retry.func, retry.args, retry.kwargs) == ("f.g", (1,), {"timeout": 7})
    assert (retry.hook, retry.group) == ("h.k", "g")
    # its own options, the eta dropped (a retry runs now), and the link to the failure
    assert retry.options == TaskOptions(timeout=30, max_attempts=2, retried_from=sent.id)
    assert retry.retried_from == sent.id


# -- idempotent bulk (issue 11, item 11) -----------------------------------------------------


def _bulk(transport: MemoryTransport, **ids: object) -> list[str]:
    return enqueue_many(transport, codec_for("k" * 32), "math.pow", [(2, 1), (2, 2), (2, 3)], **ids)


def test_a_batch_sent_again_under_its_key_queues_nothing_twice() -> None:
    transport = MemoryTransport()
    ids = _bulk(transport, idempotency_key="order-17")
    assert ids == batch_ids("order-17", 3) and len(set(ids)) == 3
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert _bulk(transport, idempotency_key="order-17") == ids
    assert transport.queue_size() == 3
    [first] = transport.fetch("c1")
    assert transport.ack([first]) == [True]
    bus, seen = EventBus(), []
    bus.subscribe(TaskEnqueued, seen.append)
    ids_again = enqueue_many(
        transport, codec_for("k" * 32), "math.pow", [(2, 1), (2, 2), (2, 3)],
        idempotency_key="order-17", events=bus,
    )  # fmt: skip
    assert ids_again == ids and seen == []  # completed, queued, queued: nothing sent
    assert transport.queue_size() == 2
    assert batch_ids("order-18", 3) != ids


def test_fixed_task_ids_are_used_and_checked_before_anything_is_sent() -> None:
    transport = MemoryTransport()
    given = [new_id() for _ in range(3)]
    assert _bulk(transport, task_ids=given) == given
    assert _bulk(transport, task_ids=given) == given
    assert transport.queue_size() == 3
    other = MemoryTransport()
    cases: list[tuple[dict[str, object], str]] = [
        ({"task_ids": [given[0], given[1], given[0]]}, r"task_ids\[2\] repeats task_ids\[0\]"),
        ({"task_ids": [given[0], "ABC", given[2]]}, r"task_ids\[1\] must be 32 lowercase hex"),
        ({"task_ids": [given[0], given[0].upper(), given[2]]}, r"task_ids\[1\] must be 32"),
        ({"task_ids": given[:2]}, r"task_ids has 2 ids for 3 calls"),
        ({"task_ids": given[0]}, r"task_ids must be a list of ids"),
        ({"task_ids": given, "idempotency_key": "k"}, r"task_ids or idempotency_key, not both"),
        ({"idempotency_key": ""}, r"idempotency_key must be a non-empty string"),
    ]
    for ids, match in cases:
        with pytest.raises(ConfigError, match=match):
            _bulk(other, **ids)
    assert other.queue_size() == 0


def test_a_keyword_enqueue_many_does_not_take_is_a_type_error() -> None:
    # Their keywords are one TypedDict (BatchOptions), checked when called as well.
    import asyncio

    from qcore import aenqueue_many

    transport = MemoryTransport()
    with pytest.raises(TypeError, match=r"^enqueue_many\(\) got an unexpected keyword .*'eta'"):
        _bulk(transport, eta=time.time())
    with pytest.raises(TypeError, match=r"^aenqueue_many\(\) got an unexpected keyword .*'sync'"):
        asyncio.run(aenqueue_many(transport, codec_for("k" * 32), "math.floor", [1], sync=True))
    assert transport.queue_size() == 0
