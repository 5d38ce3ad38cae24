"""qredis errors, under Q's one root :class:`qcore.QError`, and redis-py's turned into them
(:func:`redis_errors`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from qcore import QError

__all__ = [
    "ReplicationTimeout",
    "TransportConnectionError",
    "TransportError",
    "TransportOutOfMemory",
    "redis_errors",
]


class TransportError(QError):
    """Redis refused or failed an operation of the transport, result store or status board."""


class TransportConnectionError(TransportError, ConnectionError):
    """Redis could not be reached (after redis-py's retries); nothing was written."""


class TransportOutOfMemory(TransportError):
    """Redis hit ``maxmemory`` and refused the write; nothing of the call was written."""


class ReplicationTimeout(TransportError):
    """The tasks are queued on the master, but fewer replicas than ``wait_replicas``
    acknowledged them in time: a failover could still lose them."""


@contextmanager
def redis_errors(where: str) -> Iterator[None]:
    """Turn redis-py's errors into Q's, naming the (masked) server (notes are kept).

    A Redis that cannot be reached is one error with one line that says what to check, not
    redis-py's chain of three tracebacks (the original stays in ``__context__``).
    """
    began = time.monotonic()
    try:
        yield
    except redis.AuthenticationError as exc:
        raise _noted(
            TransportError(
                f"Redis at {where} refused the credentials ({_first_line(exc)}): check the "
                "user name and password of the URL or keyword arguments"
            ),
            exc,
        ) from None
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        waited = time.monotonic() - began
        what = "did not answer" if isinstance(exc, redis.TimeoutError) else "refused or dropped"
        error = TransportConnectionError(
            f"cannot reach Redis at {where}: it {what} for {waited:.1f} s ({_first_line(exc)}); "
            "check that it runs and that the URL, host and port are right"
        )
        raise _noted(error, exc) from None
    except (redis.exceptions.OutOfMemoryError, redis.exceptions.ExecAbortError) as exc:
        if "OOM" not in str(exc) and not isinstance(exc, redis.exceptions.OutOfMemoryError):
            raise _noted(TransportError(f"Redis at {where} refused: {exc}"), exc) from exc
        raise _noted(
            TransportOutOfMemory(
                f"Redis at {where} is out of memory (maxmemory reached) and refused the write; "
                f"nothing of the refused call was written: {exc}"
            ),
            exc,
        ) from exc
    except redis.exceptions.RedisClusterException as exc:
        # redis.asyncio's cluster client meets its nodes at its first command (the sync one
        # when it is made: qredis.topology.cluster_client says the same there).
        if "not enabled" in str(exc):
            raise _noted(
                TransportError(
                    f"Redis at {where} is not a Redis Cluster (cluster mode is not enabled on "
                    "it): use a redis:// URL for a single Redis, or name a node of a cluster"
                ),
                exc,
            ) from None
        raise _noted(
            TransportConnectionError(
                f"cannot reach Redis Cluster at {where} ({_first_line(exc)}); check that its "
                "nodes run and that the host and port are right"
            ),
            exc,
        ) from None
    except redis.RedisError as exc:
        if isinstance(exc, redis.exceptions.MovedError) or str(exc).startswith("MOVED "):
            raise _noted(
                TransportError(
                    f"Redis at {where} is a node of a Redis Cluster (MOVED {exc}): use a "
                    "redis+cluster:// URL (or a redis.cluster.RedisCluster client)"
                ),
                exc,
            ) from exc
        raise _noted(
            TransportError(f"Redis at {where} failed: {type(exc).__name__}: {exc}"), exc
        ) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _noted(error: Exception, cause: BaseException) -> Exception:
    for note in getattr(cause, "__notes__", ()):
        error.add_note(note)
    return error
