"""RedisTransport behaviour specific to Redis: key layout, scripts, errors, server checks."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from importlib import resources

import pytest
import redis
import structlog
from redis.backoff import NoBackoff
from redis.retry import Retry
from tests.support.servers import RedisServer, free_port

from qcore import ConfigError
from qredis import (
    QueueKeys,
    RedisTransport,
    TransportConnectionError,
    TransportError,
    TransportOutOfMemory,
)
from qredis.scripts import SCRIPT_NAMES, source


def all_keys(client: redis.Redis) -> list[str]:
    return sorted(k.decode() for k in client.scan_iter(count=1000))


def test_every_key_of_a_queue_shares_its_hash_tag(
    transport: RedisTransport, redis_client: redis.Redis
) -> None:
    transport.enqueue_many([("a", b"1"), ("b", b"2"), ("c", b"3")])
    transport.enqueue("later", b"4", delay=60, max_attempts=2)
    transport.heartbeat(["c1"], 60)
    a, _ = transport.fetch("c1", count=2)
    transport.dead_letter(a, "test")
    keys = all_keys(redis_client)
    assert keys, "nothing was written"
    tag = f"{{q:{transport.queue}}}:"
    assert all(k.startswith(tag) for k in keys), keys
    assert set(keys) >= {
        f"{tag}queue",
        f"{tag}msg",
        f"{tag}inflight:c1",
        f"{tag}consumers",
        f"{tag}attempts",
        f"{tag}tokens",
        f"{tag}maxatt",
        f"{tag}seq",
        f"{tag}delayed",
        f"{tag}dead",
        f"{tag}deadinfo",
    }
    transport.enqueue("p", b"5", priority=5)
    transport.enqueue("n", b"6", priority=-5)
    transport.release("c1")  # b goes back to level 0's due list
    keys = all_keys(redis_client)
    assert all(k.startswith(tag) for k in keys), keys
    assert set(keys) >= {
        f"{tag}queue:5",
        f"{tag}queue:-5",
        f"{tag}due",
        f"{tag}levels",
        f"{tag}prio",
        f"{tag}marker",
    }


def test_queue_names_that_would_break_the_layout_are_refused() -> None:
    for bad in ("", "a{b", "x}", "has space"):
        with pytest.raises(ConfigError, match="queue name"):
            QueueKeys.for_queue(bad)


def test_lua_scripts_document_keys_and_never_use_keys_command() -> None:
    for name in SCRIPT_NAMES:
        text = source(name)
        assert text.startswith("#!lua"), name
        header = "\n".join(line for line in text.splitlines() if line.startswith("--"))
        assert f"{name}.lua" in header
        if "KEYS[" in text:
            assert "KEYS[1]" in header or "KEYS[2i" in header or "KEYS[1+i]" in header, name
        assert not re.search(r"call\(\s*'KEYS'", text, re.IGNORECASE), name
    shipped = {p.name for p in resources.files("qredis").joinpath("lua").iterdir()}
    assert shipped >= {f"{n}.lua" for n in SCRIPT_NAMES}


def test_an_id_whose_payload_vanished_is_dropped_and_logged(
    transport: RedisTransport, redis_client: redis.Redis
) -> None:
    transport.enqueue("ghost", b"1")
    transport.enqueue("real", b"2")
    redis_client.hdel(transport.keys.msg, "ghost")
    with structlog.testing.capture_logs() as logs:
        got = transport.fetch("c1", count=5)
    assert [d.task_id for d in got] == ["real"]
    assert any(e["event"] == "task.payload_missing" and e["task_id"] == "ghost" for e in logs)
    assert transport.inflight_size() == 1 and transport.queue_size() == 0
    assert redis_client.hget(transport.keys.attempts, "ghost") is None


def test_a_vanished_payload_on_the_blocking_path(
    transport: RedisTransport, redis_client: redis.Redis
) -> None:
    transport.enqueue("ghost", b"1")
    redis_client.hdel(transport.keys.msg, "ghost")
    with structlog.testing.capture_logs():
        assert transport.fetch("c1", timeout=0.3) == []
    assert transport.inflight_size() == 0


def test_blocking_wake_path_is_one_bzpopmin_and_one_script(
    transport: RedisTransport, redis_client: redis.Redis
) -> None:
    import threading

    transport.enqueue("w", b"w")
    transport.fetch("warm")  # loads both scripts (a test run alone starts with none loaded)
    redis_client.config_resetstat()
    got: list[object] = []
    fetcher = threading.Thread(target=lambda: got.extend(transport.fetch("c1", 10, 5.0)))
    fetcher.start()
    while redis_client.info("clients")["blocked_clients"] < 1:
        pass
    transport.enqueue("x", b"y")
    fetcher.join(5)
    assert len(got) == 1
    stats = redis_client.info("commandstats")
    # one grab before blocking, one claim after waking, one enqueue
    assert stats["cmdstat_evalsha"]["calls"] == 3
    assert stats["cmdstat_bzpopmin"]["calls"] == 1


def test_the_claim_waits_in_redis_behind_the_bzpopmin(
    transport: RedisTransport, redis_client: redis.Redis
) -> None:
    """One round trip from the wake-up: the claim was sent with the BZPOPMIN of the marker and
    sits in the blocked client's query buffer until the BZPOPMIN returns."""
    import threading

    transport.fetch("warm")
    got: list[object] = []
    fetcher = threading.Thread(target=lambda: got.extend(transport.fetch("c1", 10, 5.0)))
    fetcher.start()
    while redis_client.info("clients")["blocked_clients"] < 1:
        pass
    [blocked] = [c for c in redis_client.client_list() if c["cmd"] == "bzpopmin"]
    assert int(blocked["qbuf"]) > 0  # the EVALSHA, not run yet
    transport.enqueue("x", b"y")
    fetcher.join(5)
    assert [d.task_id for d in got] == ["x"]  # type: ignore[attr-defined]


def test_a_blocking_fetch_resent_after_a_lost_reply_answers_the_same_tasks(
    transport: RedisTransport,
) -> None:
    """What redis-py's retry does when the reply to the BZPOPMIN + claim pipeline is lost: the
    pipeline again. The re-sent claim (same request id) answers the first claim's task and
    claims nothing more, so nothing sits in the consumer's list unknown to it."""
    transport.enqueue("a", b"pa")
    transport.enqueue_many([("b", b"pb")])  # an inline entry, opened by a claim
    client, scripts = transport._ready()
    keys, args = transport._fetch_call("c1", 1)
    client.script_load(scripts.fetch.script)  # the raw EVALSHA below does not load it

    def pipeline() -> list[object]:
        pipe = client.pipeline(transaction=False)
        pipe.bzpopmin(transport.keys.marker, 0.1)
        pipe.execute_command("EVALSHA", scripts.fetch.sha, len(keys), *keys, *args)
        return list(pipe.execute())

    _, first = pipeline()
    _, again = pipeline()
    assert first[4::5] == [b"a"]
    assert again == first
    assert transport.inflight_size() == 1 and transport.queue_size() == 1
    assert transport.ack(transport._deliveries("c1", again)[0]) == [True]
    [b] = transport.fetch("c1")
    assert (b.task_id, b.payload) == ("b", b"pb")


def test_an_ack_resent_after_a_lost_reply_answers_as_the_first_did(
    transport: RedisTransport,
) -> None:
    transport.enqueue_many([("a", b"pa"), ("b", b"pb"), ("c", b"pc")])
    held = transport.fetch("c1", count=3)
    stale = replace(held[2], token=held[2].token - 1)
    _, scripts = transport._ready()
    keys, args = transport._ack_call([held[0], held[1], stale])
    assert scripts.ack(keys, args) == [1, 1, 0]
    # redis-py re-sends the same call when the reply is lost: its tokens are gone now, yet it
    # answers as the first call did, so the caller does not take its acks for refusals.
    assert scripts.ack(keys, args) == [1, 1, 0]
    # A new call is a new question: those tasks are no longer held.
    assert transport.ack(held[:2]) == [False, False]
    assert transport.ack([held[2]]) == [True]
    assert transport.client.hlen(transport.keys.acks) == 1
    transport.forget(["c1"])
    assert transport.client.hlen(transport.keys.acks) == 0


def test_redis_down_at_enqueue_is_a_clear_error() -> None:
    url = f"redis://user:hunter2@127.0.0.1:{free_port()}/0"
    transport = RedisTransport("down", url=url, retry=Retry(NoBackoff(), 1))
    with pytest.raises(TransportConnectionError) as caught:
        transport.enqueue("a", b"payload")
    message = str(caught.value)
    assert "hunter2" not in message and "***" in message and "127.0.0.1" in message
    # One error, not a chain: redis-py's stays reachable as the context, not shown.
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert isinstance(caught.value.__context__, redis.ConnectionError)
    assert isinstance(caught.value, TransportError)
    assert transport.ping() is False


def test_oom_refuses_the_whole_enqueue_and_acks_still_work(
    redis_factory: Callable[..., RedisServer],
) -> None:
    server = redis_factory()
    client = server.client()
    transport = RedisTransport("oom", url=server.url)
    transport.enqueue_many([(f"keep{i}", b"k") for i in range(3)])
    held = transport.fetch("c1", count=3)
    client.set("filler", b"f" * 64 * 1024)
    # Below what is already used: with noeviction every write that may grow memory is refused.
    client.config_set("maxmemory", 1)
    with pytest.raises(redis.exceptions.OutOfMemoryError):
        client.set("more", b"x")
    with pytest.raises(TransportOutOfMemory, match="out of memory"):
        transport.enqueue("one", b"x" * 1000)
    items = [(f"bulk{i}", b"x" * 100) for i in range(500)]
    with pytest.raises(TransportOutOfMemory):
        transport.enqueue_many(items)
    assert client.hlen(transport.keys.msg) == 3  # no payload without its id, or vice versa
    assert transport.queue_size() == 0
    assert transport.ack(held) == [True, True, True]  # acks free memory: they must work
    transport.close()
    client.close()


def test_check_server_is_quiet_on_a_safe_server(transport: RedisTransport) -> None:
    assert transport.check_server() == []


def test_check_server_warns_about_risky_settings(
    redis_factory: Callable[..., RedisServer],
) -> None:
    server = redis_factory(appendonly=False, extra=["--maxmemory-policy", "allkeys-lru"])
    transport = RedisTransport("q", url=server.url)
    warnings = transport.check_server()
    assert len(warnings) == 2
    assert "appendonly=no" in warnings[0] and "allkeys-lru" in warnings[1]
    transport.close()


def test_check_server_tolerates_config_being_disabled(
    redis_factory: Callable[..., RedisServer],
) -> None:
    server = redis_factory(extra=["--rename-command", "CONFIG", ""])
    transport = RedisTransport("q", url=server.url)
    [warning] = transport.check_server()
    assert "CONFIG is disabled" in warning
    transport.close()


def test_bad_arguments_are_refused(transport: RedisTransport) -> None:
    with pytest.raises(TypeError, match="task_id"):
        transport.enqueue("", b"x")
    with pytest.raises(TypeError, match="payload"):
        transport.enqueue("a", "text")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="max_attempts"):
        transport.enqueue("a", b"x", max_attempts=0)
    with pytest.raises(TypeError, match="consumer"):
        transport.fetch("")
    with pytest.raises(TypeError, match="pairs"):
        transport.enqueue_many([("a", b"x", "extra")])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="ttl"):
        transport.heartbeat(["c"], 0)
    with pytest.raises(ConfigError, match="max_attempts"):
        RedisTransport("q", max_attempts=0)
    with pytest.raises(ConfigError, match="at most one"):
        RedisTransport("q", url="redis://x", connection=redis.Redis())


def test_next_due_and_promote_due(transport: RedisTransport) -> None:
    assert transport.next_due() is None
    transport.enqueue("soon", b"x", delay=30)
    due = transport.next_due()
    assert due is not None and 29 < due <= 30
    assert transport.promote_due() == 0
    assert transport.delayed_size() == 1


def test_enqueue_many_with_a_small_chunk_size(
    make_transport: Callable[..., RedisTransport],
) -> None:
    transport = make_transport(chunk_size=7)
    assert transport.enqueue_many((f"i{i}", b"x") for i in range(50)) == 50
    assert transport.queue_size() == 50


def test_enqueue_many_reports_earlier_chunks_on_error(
    make_transport: Callable[..., RedisTransport],
) -> None:
    transport = make_transport(chunk_size=2)
    items = [("a", b"1"), ("b", b"2"), ("c", b"3", "x")]
    with pytest.raises(TypeError) as caught:
        transport.enqueue_many(items)  # type: ignore[arg-type]
    assert "2 task(s) of other chunks were queued" in "".join(caught.value.__notes__)


def test_bulk_chunks_are_marked_transactions(
    make_transport: Callable[..., RedisTransport], redis_client: redis.Redis
) -> None:
    transport = make_transport(chunk_size=10)
    assert transport.enqueue_many((f"t{i}", b"x") for i in range(95)) == 95
    markers = list(redis_client.scan_iter(match=f"{transport.keys.prefix}:chunk:*"))
    assert len(markers) == 10
    assert 3_500_000 < redis_client.pttl(markers[0]) <= 3_600_000


def test_a_bad_item_stops_bulk_enqueue_after_the_chunks_sent(
    make_transport: Callable[..., RedisTransport],
) -> None:
    transport = make_transport(chunk_size=10)
    items = [(f"t{i}", b"x") for i in range(100)] + [("bad", "text")] + [("z", b"x")] * 50
    with pytest.raises(TypeError, match="pairs") as caught:
        transport.enqueue_many(items)  # type: ignore[arg-type]
    assert "100 task(s) of other chunks were queued" in "".join(caught.value.__notes__)
    assert transport.queue_size() == 100
    assert transport.ping()  # the connection was left in step


def test_bulk_payloads_wait_inside_the_queue(
    transport: RedisTransport, redis_client: redis.Redis
) -> None:
    transport.enqueue_many([("a", b"pa"), ("b", b"pb")])
    assert redis_client.hlen(transport.keys.msg) == 0  # moved into msg only when claimed
    [a] = transport.fetch("c1")
    assert redis_client.hget(transport.keys.msg, "a") == b"pa"
    assert [i.task_id for i in transport.inflight()] == ["a"]
    transport.ack([a])


def test_an_unclaimed_bulk_entry_in_an_inflight_list_is_requeued(
    transport: RedisTransport, redis_client: redis.Redis
) -> None:
    """A BLMOVE of a Q before priorities, whose reply was lost, left a raw entry in the
    consumer's list: still given back when the consumer is released."""
    transport.fetch("c1")  # registers the consumer
    transport.enqueue_many([("a", b"pa")])
    redis_client.lmove(transport.keys.queue, transport.keys.inflight("c1"), "RIGHT", "LEFT")
    assert [i.task_id for i in transport.inflight()] == ["a"]
    assert transport.release("c1").requeued == 1
    [d] = transport.fetch("c2")
    assert (d.task_id, d.payload, d.attempt) == ("a", b"pa", 1)


def test_task_ids_with_nul_are_refused(transport: RedisTransport) -> None:
    with pytest.raises(TypeError, match="NUL"):
        transport.enqueue_many([("a\0b", b"x")])
    with pytest.raises(TypeError, match="NUL"):
        transport.enqueue("a\0b", b"x")
    with pytest.raises(TypeError, match="pairs"):
        transport.enqueue_many([("a", "not bytes")])  # type: ignore[list-item]


def test_scripts_are_reloaded_after_a_script_flush(
    transport: RedisTransport, redis_client: redis.Redis
) -> None:
    transport.enqueue("a", b"1")
    redis_client.script_flush()
    transport.enqueue("b", b"2")
    redis_client.script_flush()
    assert [d.task_id for d in transport.fetch("c", count=5)] == ["a", "b"]


def test_payload_of_a_claimed_task(transport: RedisTransport) -> None:
    transport.enqueue_many([("a", b"inline payload")])
    assert transport.payload("a") is None  # still inside its queue entry
    transport.fetch("c")
    assert transport.payload("a") == b"inline payload"
    assert transport.payload("nope") is None


def test_a_fetch_resent_after_a_lost_reply_answers_the_same_tasks(
    transport: RedisTransport,
) -> None:
    """What redis-py's retry does when the reply to a fetch is lost: the same call again."""
    transport.enqueue_many([(f"t{i}", b"x") for i in range(5)])
    _, scripts = transport._ready()
    k = transport.keys
    keys, _ = transport._fetch_call("c1", 2)
    args = (2, 3, "c1", 60_000, "request-1")
    first = scripts.fetch(keys, args)
    again = scripts.fetch(keys, args)
    assert first == again and len(first) == 4 + 2 * 5
    assert transport.inflight_size() == 2 and transport.queue_size() == 3
    fresh = scripts.fetch(keys, (2, 3, "c1", 60_000, "request-2"))
    assert fresh[4] not in (first[4], first[9])
    assert transport.inflight_size() == 4
    transport.release("c1")
    assert transport.client.hget(k.fetches, "c1") is None
