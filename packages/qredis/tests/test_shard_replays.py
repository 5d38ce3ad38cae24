"""Replays on a sharded queue (see qredis.shards, "Replays"): a task held on another shard than
the one its id hashes to (a chain's link, a unique task, a task of an unsharded producer) is
marked done on its id's shard too, so that a copy sent through ``enqueue``, which lands there,
is refused as on an unsharded queue; a schedule's firing from the moment it is fired. On one
Redis and on the local Redis Cluster."""

from __future__ import annotations

import pickle
import time
from collections.abc import Iterator

import pytest
import structlog
from redis.backoff import NoBackoff
from redis.retry import Retry
from tests.support.servers import free_port

from qcore import ScheduleSpec, codec_for, firing_id, new_id
from qredis import RedisTransport, ShardedQueue, TransportConnectionError
from qredis.placement import shard_queues


@pytest.fixture(params=["redis", "cluster"])
def url(request: pytest.FixtureRequest) -> str:
    return str(
        request.getfixturevalue("redis_url" if request.param == "redis" else "redis_cluster_url")
    )


@pytest.fixture
def sharded(url: str, queue_name: str) -> Iterator[ShardedQueue]:
    queue = RedisTransport(queue_name, url=url).sharded(3)
    assert isinstance(queue, ShardedQueue)
    yield queue
    queue.close()


def _away(sharded: ShardedQueue, holder: str, n: int = 1) -> list[str]:
    """``n`` new ids that hash to another shard than the one named ``holder``."""
    ids: list[str] = []
    while len(ids) < n:
        task_id = new_id()
        if sharded.shard(task_id).queue != holder:
            ids.append(task_id)
    return ids


def test_copies_of_links_and_unique_tasks_are_refused_from_the_moment_they_are_placed(
    sharded: ShardedQueue,
) -> None:
    chain_id = new_id()
    first, second = _away(sharded, sharded.shard(chain_id).queue, 2)
    assert sharded.start_chain(chain_id, [(first, b"l1", None), (second, b"l2", None)])
    [unique] = _away(sharded, sharded.shard("lock-1").queue)
    assert sharded.enqueue_unique(unique, b"u", lock="lock-1", ttl=60) == unique
    for task_id in (first, second, unique):  # copies, while the tasks wait
        sharded.enqueue(task_id, b"copy")
    assert sharded.enqueue_absent([(first, b"x"), (second, b"x"), (unique, b"x")]) == [False] * 3
    replayed: list[str] = []
    got = sharded.fetch("c1", count=10, replayed=replayed)
    assert sorted(d.task_id for d in got) == sorted([first, unique])  # the originals
    assert {d.payload for d in got} == {b"l1", b"u"}
    assert sorted(replayed) == sorted([first, second, unique])
    assert sharded.ack_links(
        got, [(chain_id, 1, True) if d.task_id == first else None for d in got]
    )
    [link] = sharded.fetch("c1", count=10)
    assert (link.task_id, link.payload) == (second, b"l2")  # the chain goes on as ever


def test_a_task_acked_off_its_ids_shard_is_marked_done_on_that_shard(
    sharded: ShardedQueue, url: str, queue_name: str
) -> None:
    plain = RedisTransport(queue_name, url=url)  # an unsharded producer: shard 0
    [task_id] = _away(sharded, queue_name)  # shard 0 is the queue: it hashes to 1 or 2
    plain.enqueue(task_id, b"p")
    plain.enqueue(task_id, b"copy")  # its producer's copy, beside it: changes nothing
    [d] = sharded.fetch("c1", count=5)
    assert (d.queue, d.payload) == (plain.queue, b"p")
    assert sharded.ack([d]) == [True]
    sharded.enqueue(task_id, b"p")  # the copy, on the id's shard
    replayed: list[str] = []
    assert sharded.fetch("c2", count=5, replayed=replayed) == []
    assert replayed == [task_id]
    assert sharded.enqueue_absent([(task_id, b"p")]) == [False]
    plain.close()


def test_no_replay_window_marks_nothing(url: str, queue_name: str) -> None:
    sharded = RedisTransport(queue_name, url=url, replay_window=0).sharded(3)
    assert isinstance(sharded, ShardedQueue)
    chain_id = new_id()
    [link] = _away(sharded, sharded.shard(chain_id).queue)
    sharded.start_chain(chain_id, [(link, b"l", None)])
    home = sharded.shard(link)
    assert home.client.zscore(home.keys.done, link) is None
    sharded.close()


def test_an_ack_never_waits_on_the_shard_its_mark_goes_to(redis_url: str, queue_name: str) -> None:
    names = shard_queues(queue_name, 3)
    held = RedisTransport(names[0], url=redis_url)
    gone = f"redis://127.0.0.1:{free_port()}/0"  # the other shards' node is down
    down = [RedisTransport(n, url=gone, retry=Retry(NoBackoff(), 0)) for n in names[1:]]
    sharded = ShardedQueue(queue_name, [held, *down])
    [task_id] = _away(sharded, held.queue)
    held.enqueue(task_id, b"p")
    [d] = held.fetch("c1")
    with structlog.testing.capture_logs() as logs:
        assert sharded.ack([d]) == [True]  # acked on its own shard all the same
    [failed] = [e for e in logs if e["event"] == "shard.mark_failed"]
    assert failed["count"] == 1 and failed["log_level"] == "warning"
    with pytest.raises(TransportConnectionError):  # a placement's mark is not skipped
        sharded.start_chain(new_id(), [(task_id, b"l", None)])
    sharded.close()


def test_a_firing_s_copy_is_refused_from_the_moment_it_is_fired(
    sharded: ShardedQueue, secret: str
) -> None:
    """A firing waits on shard 0 (where schedules live) under an id that hashes elsewhere: it
    is marked done on its id's shard when fired, as a link is when placed, so a copy sent
    through ``enqueue`` while it waits or runs is refused."""
    now = (int(time.time()) // 60 + 24 * 60) * 60_000
    sid = next(
        s
        for s in (f"tick-{n}" for n in range(100))
        if sharded.shard(firing_id(s, now)) is not sharded.transports[0]
    )
    schedules = sharded.schedules(codec_for(secret))
    spec = ScheduleSpec(
        id=sid, func="math.floor", args=(1.5,), schedule_type="I", minutes=1, next_run=now / 1000
    )
    assert schedules.add(spec)
    batch = schedules.due(None, now_ms=now)
    loaded = schedules.load([s for s, _ in batch.entries])
    firings = [
        schedules.plan(loaded[s], due, batch.now_ms, catch_up=True) for s, due in batch.entries
    ]
    assert [f.task_id for f in firings] == [firing_id(sid, now)]
    assert schedules.fire(firings) == [1]
    task_id = firings[0].task_id
    sharded.enqueue(task_id, b"copy")  # lands on the id's shard, while the firing waits
    assert sharded.enqueue_absent([(task_id, b"copy")]) == [False]
    replayed: list[str] = []
    got = sharded.fetch("c1", count=10, replayed=replayed)
    assert [(d.task_id, d.queue) for d in got] == [(task_id, sharded.transports[0].queue)]
    assert replayed == [task_id]
    assert sharded.ack(got) == [True]
    assert pickle.loads(pickle.dumps(schedules)).fire(firings) == [0]  # fired once only
