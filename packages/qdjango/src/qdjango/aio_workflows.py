"""django-q2's workflow objects awaited: ``Chain``, ``Iter`` and ``AsyncTask`` of
:mod:`qdjango.workflows`, built the same way (``append``, options), run and read with
``await`` through :mod:`qdjango.aio` (``await chain.run()``, ``await chain.result(wait)``).
No ``broker``: the asyncio API sends on ``Q_CLUSTER``'s queues only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qcore import ChainState
from qdjango.aio_results import count_group, fetch, fetch_group, result, result_group
from qdjango.errors import ConfigError
from qdjango.tasks import TaskFunc
from qdjango.workflows import _option_property

__all__ = ["AsyncTask", "Chain", "Iter"]


class Chain:
    """:class:`qdjango.Chain`, awaited: ``append`` links, then ``await run()``."""

    def __init__(
        self,
        chain: Sequence[Any] | None = None,
        group: str | None = None,
        cached: Any = None,
        sync: bool | None = None,
        *,
        stop_on_failure: bool = True,
    ) -> None:
        self.chain: list[Any] = list(chain or [])
        self.group = group
        self.cached = cached
        self.sync = sync
        self.stop_on_failure = stop_on_failure
        self.started = False

    def append(self, func: TaskFunc, *args: Any, **kwargs: Any) -> int:
        """Add a link ``func(*args, **kwargs)``; returns the chain's length."""
        self.chain.append((func, args, kwargs))
        self.started = False
        return self.length()

    async def run(self) -> str:
        """Queue the chain (again, under a new group when it ran before); returns its group."""
        from qdjango.aio import async_chain

        group = self.group if not self.started else None
        self.group = await async_chain(
            self.chain, group=group, sync=self.sync, stop_on_failure=self.stop_on_failure
        )
        self.started = True
        return self.group

    async def result(self, wait: float = 0) -> list[Any] | None:
        """The links' results in order once every link is saved (``wait`` ms), else None."""
        if not self.started or self.group is None:
            return None
        return await result_group(self.group, failures=True, wait=wait, count=self.length())

    async def fetch(self, failures: bool = True, wait: float = 0) -> Any:
        """The links' ``Task`` rows once every link is saved (``wait`` ms), else None."""
        if not self.started or self.group is None:
            return None
        return await fetch_group(self.group, failures=failures, wait=wait, count=self.length())

    async def current(self) -> int | None:
        """How many links have finished, None before ``run``."""
        if not self.started or self.group is None:
            return None
        state = await self.state()
        return state.done if state is not None else await count_group(self.group)

    async def state(self) -> ChainState | None:
        """Where the chain is in Redis (``length``, ``done``, ``state``, ``stopped_at``)."""
        from qdjango.aio_site import site
        from qdjango.conf import get_settings

        if self.group is None:
            return None
        return await site().queue(get_settings().queue).chain_state(self.group)

    def length(self) -> int:
        return len(self.chain)


class _Sent:
    """``result`` and ``fetch`` of what ``run`` sent under ``id``: None before it ran."""

    id: str | None
    started: bool

    async def result(self, wait: float = 0) -> Any:
        """Its result (an iteration's: the results in the order of the arguments) once done
        (``wait`` ms for it), else None (also before ``run``)."""
        if not self.started or self.id is None:
            return None
        return await result(self.id, wait=wait)

    async def fetch(self, wait: float = 0) -> Any:
        """Its ``Task`` row once done (``wait`` ms for it), else None."""
        if not self.started or self.id is None:
            return None
        return await fetch(self.id, wait=wait)


class Iter(_Sent):
    """:class:`qdjango.Iter`, awaited: ``append`` calls, then ``await run()``."""

    def __init__(
        self,
        func: TaskFunc | None = None,
        args: list[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        cached: Any = None,
        sync: bool | None = None,
    ) -> None:
        self.func = func
        self.args: list[Any] = list(args or [])
        self.kwargs: dict[str, Any] = dict(kwargs or {})
        self.cached = cached
        self.sync = sync
        self.id: str | None = None
        self.started = False

    def append(self, *args: Any) -> int:
        """Add a call with ``args``; returns how many calls there are."""
        self.args.append(args)
        self.started = False
        return self.length()

    async def run(self) -> str:
        """Queue the calls; returns the iteration's id."""
        from qdjango.aio import async_iter

        if self.func is None:
            raise TypeError("Iter needs a func to run")
        self.id = await async_iter(self.func, self.args, sync=self.sync, **self.kwargs)
        self.started = True
        return self.id

    def length(self) -> int:
        return len(self.args)


class AsyncTask(_Sent):
    """:class:`qdjango.AsyncTask`, awaited: set it up, ``await run()``, ``await result()``.
    Changing it after a run makes ``result()`` None until the next run."""

    def __init__(self, func: TaskFunc, *args: Any, **kwargs: Any) -> None:
        if "broker" in kwargs or "broker" in (kwargs.get("q_options") or {}):
            raise ConfigError("qdjango.aio takes no broker option")
        self._func = func
        self._args = args
        self._kwargs = dict(kwargs)
        self.id: str | None = None
        self.started = False

    def _option(self, name: str) -> Any:
        return self._kwargs.get(name, (self._kwargs.get("q_options") or {}).get(name))

    def _set(self, name: str, value: Any) -> None:
        self._kwargs[name] = value
        self.started = False

    func = property(lambda self: self._func)
    args = property(lambda self: self._args)
    kwargs = property(lambda self: self._kwargs)

    sync = _option_property("sync")
    save = _option_property("save")
    hook = _option_property("hook")
    group = _option_property("group")
    cached = _option_property("cached")

    async def run(self) -> str:
        """Queue the task (:func:`qdjango.aio.async_task`); returns its id."""
        from qdjango.aio import async_task

        kwargs = dict(self._kwargs)
        kwargs.pop("cached", None)
        self.id = await async_task(self._func, *self._args, **kwargs)
        self.started = True
        return self.id

    async def result_group(
        self, failures: bool = False, wait: float = 0, count: int | None = None
    ) -> Any:
        """The results of the task's group, or None (no group, or before ``run``)."""
        if not self.started or self.group is None:
            return None
        return await result_group(self.group, failures=failures, wait=wait, count=count)

    async def fetch_group(
        self, failures: bool = True, wait: float = 0, count: int | None = None
    ) -> Any:
        """The ``Task`` rows of the task's group, or None."""
        if not self.started or self.group is None:
            return None
        return await fetch_group(self.group, failures=failures, wait=wait, count=count)
