"""The asyncio queue's cancel (part of :class:`~qredis.aio.AsyncQueue`): the sync transport's
own ``cancel.lua``, looked at then swapped for the cancelled twin, as
:meth:`qredis.RedisTransport.cancel` does (see :mod:`qredis.cancel`)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis

from qcore import UnknownTask
from qredis.cancel import _TRIES, _outcome
from qredis.connection import redis_errors
from qredis.keys import QueueKeys
from qredis.scripts import source

__all__ = ["AsyncCancelling"]


class AsyncCancelling:
    """``cancel``, awaited."""

    if TYPE_CHECKING:  # AsyncQueue's
        _client: aioredis.Redis
        _keys: QueueKeys
        _where: str

    _cancel: Any = None

    async def cancel(
        self, task_id: str, twin: Callable[[bytes], bytes], *, terminate: bool = False
    ) -> str:
        """As :meth:`qredis.RedisTransport.cancel`: ``"queued"`` or ``"delayed"`` (swapped for
        ``twin(payload)``, due at once), ``"terminating"`` (held, and ``terminate``);
        :class:`~qcore.TaskRunning` for a held task without ``terminate``,
        :class:`~qcore.UnknownTask` for one that is not queued, delayed or held. Not sent
        again on a dropped connection (a swap that went through would then look like a task
        cancelled already): the error is the caller's."""
        if not isinstance(task_id, str) or not task_id:
            raise UnknownTask(f"a task id is a non-empty string, not {task_id!r}")
        if self._cancel is None:
            self._cancel = self._client.register_script(source("cancel"))
        k = self._keys
        keys = (k.queue, k.msg, k.delayed, k.tokens, k.dead, k.maxatt, k.cancel)
        flag = "1" if terminate else "0"
        for _ in range(_TRIES):
            with redis_errors(self._where):
                found = await self._cancel(keys, (task_id, "look", "", "", flag))
            state = _text(found[0])
            if state in ("delayed", "queued"):
                payload = bytes(found[1])
                new = twin(payload)
                digest = hashlib.sha1(payload, usedforsecurity=False).hexdigest()
                with redis_errors(self._where):
                    done = await self._cancel(keys, (task_id, "swap", digest, new, flag))
                state = _text(done[0])
                if state == "changed":
                    continue
            return _outcome(task_id, state)
        raise UnknownTask(f"task {task_id!r} kept changing while it was being cancelled")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
