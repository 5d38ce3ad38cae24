"""Chains and iterations (part of :class:`~qredis.RedisTransport`): ``chain_start.lua``
stores a chain's signed links and queues the first; ``chain_ack.lua`` acks a batch holding
links and queues each acked link's successor in the same step (see :mod:`qcore.chains`);
``iter_put.lua`` gathers an iteration's records (see :mod:`qcore.iters`);
``enqueue_unique.lua`` queues a unique task (see :mod:`qcore.unique`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from qcore import ChainState, Delivery, check_priority
from qredis.base import TransportBase, ms, positive_int

__all__ = ["Chains"]

_NUL = b"\0"


class Chains(TransportBase):
    """``start_chain``, ``ack_links``, ``chain_state`` and ``iter_put``."""

    if TYPE_CHECKING:  # RedisTransport's: the KEYS and ARGV of ack.lua for a batch

        def _ack_call(
            self, batch: list[Delivery], request: str | None = None
        ) -> tuple[list[str], list[Any]]: ...

    def start_chain(
        self,
        chain_id: str,
        items: Sequence[tuple[str, bytes, int | None]],
        *,
        stop_on_failure: bool = True,
        priorities: Sequence[int] | None = None,
    ) -> bool:
        """Store the links ``(task_id, payload, max_attempts)`` of chain ``chain_id`` and queue
        the first, in one step; each link is queued at its priority (``priorities``, one per
        link; 0 for all when None). False (nothing changes) when the chain exists already."""
        if not items:
            raise ValueError("a chain needs at least one link")
        levels = _levels(priorities, len(items))
        _, scripts = self._ready()
        (first_id, first_payload, first_limit), rest = items[0], items[1:]
        args: list[Any] = [
            "1" if stop_on_failure else "0",
            len(items),
            first_id,
            first_payload,
            _limit(first_limit),
            levels[0],
        ]
        for (task_id, payload, limit), level in zip(rest, levels[1:]):
            args.append(task_id.encode() + _NUL + _limit(limit).encode() + _NUL + bytes(payload))
            args.append(level)
        keys = (*self._enqueue_keys_at(levels[0]), self._keys.chain(chain_id))
        with self._errors():
            res = scripts.chain_start(keys, args)
        return bool(res)

    def ack_links(
        self,
        deliveries: Iterable[Delivery],
        links: Sequence[tuple[str, int, bool] | None],
        *,
        request: str | None = None,
    ) -> list[bool]:
        """:meth:`ack`, and for each acked delivery that is a link ``(chain id, index,
        succeeded)``, queue its chain's next link (or stop the chain at a failure, if it
        stops on failures), in the same script."""
        batch = list(deliveries)
        if not batch:
            return []
        _, scripts = self._ready()
        ack_keys, ack_args = self._ack_call(batch, request)
        k = self._keys
        keys = [*ack_keys, *self._enqueue_keys0]
        flags = []
        for link in links:
            if link is None:
                keys.append(k.msg)  # a key of the queue's slot, never touched
                flags.append("-")
            else:
                chain_id, index, succeeded = link
                keys.append(k.chain(chain_id))
                flags.append(f"{index} {'s' if succeeded else 'f'}")
        with self._errors():
            res = scripts.chain_ack(keys, [len(batch), *ack_args, *flags])
        return [bool(x) for x in res]

    def iter_put(self, iter_id: str, index: int, payload: bytes, size: int) -> list[bytes]:
        """Keep call ``index``'s signed record in iteration ``iter_id``'s hash; every record
        once all ``size`` are there, else ``[]`` (``iter_put.lua``)."""
        _, scripts = self._ready()
        with self._errors():
            res = scripts.iter_put((self._keys.iter(iter_id),), (index, payload, size))
        return [bytes(x) for x in res]

    def enqueue_unique(
        self,
        task_id: str,
        payload: bytes,
        *,
        lock: str,
        ttl: float,
        delay: float = 0.0,
        max_attempts: int | None = None,
        priority: int = 0,
    ) -> str:
        """:meth:`enqueue` (at ``priority``) under the lock ``lock``, unless a live task
        (queued, delayed or in flight) holds it; returns the id of the task holding it
        (``task_id`` when queued now). The lock expires after ``ttl`` seconds at the latest
        (``enqueue_unique.lua``)."""
        level = check_priority(priority)
        _, scripts = self._ready()
        k = self._keys
        limit = "" if max_attempts is None else positive_int("max_attempts", max_attempts)
        args = (task_id, payload, ms(delay) if delay else 0, limit, max(1, ms(ttl)), level)
        keys = (*self._enqueue_keys_at(level), k.unique(lock), k.dead)
        with self._errors():
            res = scripts.enqueue_unique(keys, args)
        return bytes(res).decode()

    def chain_state(self, chain_id: str) -> ChainState | None:
        """Where chain ``chain_id`` is, or None when there is no such chain (or it ended more
        than a day ago)."""
        client, _ = self._ready()
        with self._errors():
            n, done, state, stopped = client.hmget(
                self._keys.chain(chain_id), "n", "done", "state", "stopped_at"
            )
        if n is None:
            return None
        return ChainState(
            int(n), int(done or 0), (state or b"running").decode(), _int_or_none(stopped)
        )


def _limit(limit: int | None) -> str:
    return "" if limit is None else str(positive_int("max_attempts", limit))


def _levels(priorities: Sequence[int] | None, n: int) -> list[int]:
    """One checked priority per link."""
    if priorities is None:
        return [0] * n
    levels = [check_priority(p) for p in priorities]
    if len(levels) != n:
        raise ValueError(f"{len(levels)} priorities given for a chain of {n} links")
    return levels


def _int_or_none(raw: bytes | None) -> int | None:
    return None if raw is None else int(raw)
