"""Helpers for the cluster's end-to-end tests: a counting result store, a test bench."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from qcluster import Cluster, ClusterConfig
from qcore import EventBus, TaskResult
from qredis import Producer, RedisResultStore, RedisStatusBoard, RedisTransport


class CountingStore(RedisResultStore):
    """The Redis result store, also counting in Redis how often each id was saved.

    Picklable like its parent, so worker processes use it; the counts prove "saved exactly
    once" (an upsert alone would hide a second save).
    """

    def save_many(
        self, results: Sequence[TaskResult], *, fences: Sequence[int] | None = None
    ) -> None:
        # Counted once saved: a save the store refused (a record too large) saved nothing.
        super().save_many(results, fences=fences)
        client, _ = self._ready()
        pipe = client.pipeline(transaction=False)
        for record in results:
            pipe.hincrby(self.count_key, record.id, 1)
        pipe.execute()

    @property
    def count_key(self) -> str:
        return f"test-save-counts:{self.namespace}"

    def counts(self) -> dict[str, int]:
        client, _ = self._ready()
        return {k.decode(): int(v) for k, v in client.hgetall(self.count_key).items()}


@dataclass
class Bench:
    """A private queue on the test's Redis, a producer for it and the clusters started on it."""

    url: str
    queue: str
    clusters: list[Cluster] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.producer = Producer(self.url, self.queue, namespace=self.queue)
        self.store = CountingStore(self.url, namespace=self.queue)
        self.board = RedisStatusBoard(self.url, namespace=self.queue)
        self.transport = RedisTransport(self.queue, url=self.url)
        # The transport's own client: a RedisCluster on a redis+cluster:// URL.
        self.client = self.transport.client

    def cluster(
        self,
        *,
        events: EventBus | None = None,
        transport_options: Mapping[str, Any] | None = None,
        **settings: Any,
    ) -> Cluster:
        defaults: dict[str, Any] = {
            "name": "t",
            "queue": self.queue,
            "workers": 2,
            "status_interval": 0.2,
            "heartbeat": 1.0,
            "retry": 10.0,
            "grace": 10.0,
        }
        defaults.update(settings)
        cluster = Cluster(
            ClusterConfig(**defaults),
            transport=RedisTransport(self.queue, url=self.url, **(transport_options or {})),
            store=CountingStore(self.url, namespace=self.queue),
            status_board=RedisStatusBoard(self.url, namespace=self.queue),
            events=events,
        )
        self.clusters.append(cluster)
        return cluster

    def wait_all(self, ids: Sequence[str], timeout: float = 60) -> dict[str, TaskResult]:
        """Each id's record, waiting (woken by the store's notices) up to ``timeout`` in all."""
        deadline = time.monotonic() + timeout
        out: dict[str, TaskResult] = {}
        for task_id in ids:
            remaining = max(0.001, deadline - time.monotonic())
            record = self.store.wait(task_id, remaining)
            assert record is not None, f"no record for {task_id} within {timeout} s"
            out[task_id] = record
        return out

    def status(self) -> dict[str, Any] | None:
        clusters = self.board.clusters()
        return clusters[0] if clusters else None

    def close(self) -> None:
        for cluster in self.clusters:
            if cluster.is_running:
                cluster.stop(timeout=20, now=True)
        self.producer.close()
        self.transport.close()


def eventually(check: Callable[[], Any], timeout: float = 20, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy (for states no event announces)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


@dataclass(frozen=True)
class RedisClock:
    """A clock the test moves, shared by every cluster process: epoch seconds in a Redis key."""

    url: str
    key: str

    def __call__(self) -> float:
        client = redis.Redis.from_url(self.url)
        try:
            value = client.get(self.key)
        finally:
            client.close()
        assert value is not None, "the test clock is not set"
        return float(value)

    def set(self, seconds: float) -> None:
        client = redis.Redis.from_url(self.url)
        client.set(self.key, repr(seconds))
        client.close()
