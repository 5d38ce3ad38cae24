"""The shared pools: one per process and per set of connection parameters, counted by their
users, disconnected when the last one closes, and forgotten in a forked child (which must not
talk over its parent's sockets)."""

from __future__ import annotations

import os
import threading
from typing import Any

import redis

__all__ = ["acquire_pool", "release_pool", "reset_pools", "shared_pool_count"]

_lock = threading.Lock()
# key -> [pool, number of users]; a pool is disconnected when its last user closes.
_pools: dict[bytes, list[Any]] = {}
_pools_pid = os.getpid()


def reset_pools() -> None:
    """Forget every shared pool of this process (their connections close when collected)."""
    global _pools_pid
    with _lock:
        _pools.clear()
        _pools_pid = os.getpid()


def _after_fork_in_child() -> None:
    global _lock, _pools_pid
    # A fork can happen while another thread holds the lock; the child starts afresh.
    _lock = threading.Lock()
    _pools.clear()
    _pools_pid = os.getpid()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _check_fork() -> None:
    global _pools_pid
    if _pools_pid != os.getpid():
        # A forked child must not talk over its parent's sockets.
        _pools.clear()
        _pools_pid = os.getpid()


def acquire_pool(key: bytes, make: Any) -> redis.ConnectionPool:
    with _lock:
        _check_fork()
        entry = _pools.get(key)
        if entry is None:
            entry = _pools[key] = [make(), 0]
        entry[1] += 1
        return entry[0]  # type: ignore[no-any-return]


def release_pool(key: bytes, pool: redis.ConnectionPool) -> None:
    with _lock:
        _check_fork()
        entry = _pools.get(key)
        if entry is None or entry[0] is not pool:
            return
        entry[1] -= 1
        if entry[1] <= 0:
            del _pools[key]
            _disconnect(pool)


def _disconnect(pool: Any) -> None:
    """Close a shared pool: a ``ConnectionPool``, or a ``RedisCluster`` (its own pools)."""
    if isinstance(pool, redis.RedisCluster):
        pool.close()
    else:
        pool.disconnect()


def shared_pool_count() -> int:
    """How many shared pools this process holds (for tests of the connection economy)."""
    with _lock:
        _check_fork()
        return len(_pools)
