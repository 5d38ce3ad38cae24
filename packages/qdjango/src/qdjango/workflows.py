"""django-q2's workflow API: ``async_chain`` and ``Chain`` (links run one after the other),
``async_iter`` and ``Iter`` (one function over many arguments, one collated result) and
``AsyncTask`` (``async_task`` as an object). The names and signatures are django-q2's; what
runs underneath is qcore's (chains: :mod:`qcore.chains`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from qcore import ChainState, chain_messages, iter_messages, send_iter, start_chain
from qdjango import connection
from qdjango.conf import get_settings, task_codec
from qdjango.tasks import (
    async_task,
    count_group,
    fetch,
    fetch_group,
    result,
    result_group,
    run_in_process,
)

__all__ = ["AsyncTask", "Chain", "Iter", "async_chain", "async_iter"]

TaskFunc = Callable[..., Any] | str


def async_chain(
    chain: Sequence[Any],
    group: str | None = None,
    cached: Any = None,
    sync: bool | None = None,
    broker: Any = None,
    *,
    stop_on_failure: bool = True,
    q_options: Mapping[str, Any] | None = None,
) -> str:
    """Run ``chain`` (a list of callables, dotted paths or ``(func, args, kwargs)`` tuples)
    link after link; returns its group (a new one unless given), which every link belongs to.

    The next link is queued by the step that acks the one before it, after its record is
    saved. A failed link stops the chain (``stop_on_failure=False``: it goes on, as in
    django-q2). ``q_options`` apply to every link; a link's kwargs may hold its own.
    ``cached`` is accepted for django-q2's signature and ignored (results are in the
    database). ``sync=True`` runs the chain here and now. ``broker``: a transport.
    """
    chain_id, messages = chain_messages(chain, group=group, q_options=q_options)

    def send(transport: Any, codec: Any, events: Any = None) -> None:
        start_chain(
            transport, codec, chain_id, messages, stop_on_failure=stop_on_failure, events=events
        )

    if sync if sync is not None else get_settings().sync:
        run_in_process(send)
    else:
        transport = broker if broker is not None else connection.transport()
        send(transport, task_codec(), connection.events())
    return chain_id


class Chain:
    """A chain built link by link (django-q2's ``Chain``): ``append``, then ``run``."""

    def __init__(
        self,
        chain: Sequence[Any] | None = None,
        group: str | None = None,
        cached: Any = None,
        sync: bool | None = None,
        broker: Any = None,
        *,
        stop_on_failure: bool = True,
    ) -> None:
        self.chain: list[Any] = list(chain or [])
        self.group = group
        self.cached = cached
        self.sync = sync
        self.broker = broker
        self.stop_on_failure = stop_on_failure
        self.started = False

    def append(self, func: TaskFunc, *args: Any, **kwargs: Any) -> int:
        """Add a link ``func(*args, **kwargs)`` (``q_options`` in kwargs are the link's);
        returns the chain's length."""
        self.chain.append((func, args, kwargs))
        self.started = False
        return self.length()

    def run(self) -> str:
        """Queue the chain (again, under a new group when it ran before); returns its group."""
        group = self.group if not self.started else None
        self.group = async_chain(
            self.chain,
            group=group,
            sync=self.sync,
            broker=self.broker,
            stop_on_failure=self.stop_on_failure,
        )
        self.started = True
        return self.group

    def result(self, wait: float = 0) -> list[Any] | None:
        """The links' results in order once every link is saved (``wait`` ms for it), else
        None."""
        if not self.started or self.group is None:
            return None
        return result_group(self.group, failures=True, wait=wait, count=self.length())

    def fetch(self, failures: bool = True, wait: float = 0) -> Any:
        """The links' ``Task`` rows once every link is saved (``wait`` ms for it), else None."""
        if not self.started or self.group is None:
            return None
        return fetch_group(self.group, failures=failures, wait=wait, count=self.length())

    def current(self) -> int | None:
        """How many links have finished (from the chain's state in Redis), None before run."""
        if not self.started or self.group is None:
            return None
        state = self.state()
        return state.done if state is not None else count_group(self.group)

    def state(self) -> ChainState | None:
        """Where the chain is in Redis (``length``, ``done``, ``state``, ``stopped_at``)."""
        if self.group is None:
            return None
        transport = self.broker if self.broker is not None else connection.transport()
        return transport.chain_state(self.group)  # type: ignore[no-any-return]

    def length(self) -> int:
        """How many links the chain has."""
        return len(self.chain)


def async_iter(func: TaskFunc, args_iter: Any, **kwargs: Any) -> str:
    """Queue ``func(*args)`` for each element of ``args_iter`` (a non-tuple element is one
    argument); returns the iteration's id. When the last call finishes, one ``Task`` is saved
    under that id whose result is the list of results **in the order of the arguments**
    (django-q2 gives them in the order the calls finished). The calls' own successes are not
    saved (django-q2 keeps them in its cache), their failures are.

    ``kwargs`` are options as for ``async_task`` (``timeout``, ``q_options``, ...) plus
    ``sync``, ``broker`` and ``cached`` (accepted and ignored: results are in the database).
    ``hook`` is dropped, as in django-q2.
    """
    sync = kwargs.pop("sync", None)
    broker = kwargs.pop("broker", None)
    kwargs.pop("cached", None)
    kwargs.pop("hook", None)
    q_options = {**(kwargs.pop("q_options", None) or {}), **kwargs}
    iter_id, messages = iter_messages(func, args_iter, q_options=q_options or None)

    def send(transport: Any, codec: Any, events: Any = None) -> None:
        send_iter(transport, codec, messages, events)

    if sync if sync is not None else get_settings().sync:
        run_in_process(send)
    else:
        transport = broker if broker is not None else connection.transport()
        send(transport, task_codec(), connection.events())
    return iter_id


class Iter:
    """An iteration built call by call (django-q2's ``Iter``): ``append``, then ``run``."""

    def __init__(
        self,
        func: TaskFunc | None = None,
        args: list[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        cached: Any = None,
        sync: bool | None = None,
        broker: Any = None,
    ) -> None:
        self.func = func
        self.args: list[Any] = list(args or [])
        self.kwargs: dict[str, Any] = dict(kwargs or {})
        self.cached = cached
        self.sync = sync
        self.broker = broker
        self.id: str | None = None
        self.started = False

    def append(self, *args: Any) -> int:
        """Add a call with ``args``; returns how many calls there are."""
        self.args.append(args)
        self.started = False
        return self.length()

    def run(self) -> str:
        """Queue the calls; returns the iteration's id."""
        if self.func is None:
            raise TypeError("Iter needs a func to run")
        self.id = async_iter(
            self.func, self.args, sync=self.sync, broker=self.broker, **self.kwargs
        )
        self.started = True
        return self.id

    def result(self, wait: float = 0) -> Any:
        """The list of results in the order of the arguments, once all are done (``wait``
        ms for it), else None."""
        if not self.started or self.id is None:
            return None
        return result(self.id, wait=wait)

    def fetch(self, wait: float = 0) -> Any:
        """The iteration's ``Task``, once all calls are done, else None."""
        if not self.started or self.id is None:
            return None
        return fetch(self.id, wait=wait)

    def length(self) -> int:
        """How many calls there are."""
        return len(self.args)


def _option_property(name: str) -> Any:
    """An option of :class:`AsyncTask` read from its keywords (or their ``q_options``) and
    set among them (a set option makes the task unsent again)."""
    return property(lambda self: self._option(name), lambda self, value: self._set(name, value))


class AsyncTask:
    """``async_task`` as an object (django-q2's ``AsyncTask``): set it up, ``run()`` it, read
    its ``result``. Changing it after a run makes ``result()`` None until the next run."""

    def __init__(self, func: TaskFunc, *args: Any, **kwargs: Any) -> None:
        self._func = func
        self._args = args
        self._kwargs = dict(kwargs)
        self.id: str | None = None
        self.started = False

    def _changed(self) -> None:
        self.started = False

    def _option(self, name: str) -> Any:
        return self._kwargs.get(name, (self._kwargs.get("q_options") or {}).get(name))

    def _set(self, name: str, value: Any) -> None:
        self._kwargs[name] = value
        self._changed()

    func = property(lambda self: self._func)
    args = property(lambda self: self._args)
    kwargs = property(lambda self: self._kwargs)

    broker = _option_property("broker")
    sync = _option_property("sync")
    save = _option_property("save")
    hook = _option_property("hook")
    group = _option_property("group")
    cached = _option_property("cached")

    def run(self) -> str:
        """Queue the task (``async_task``); returns its id."""
        kwargs = dict(self._kwargs)
        kwargs.pop("cached", None)
        broker = kwargs.pop("broker", None)
        if broker is not None:
            q_options = dict(kwargs.pop("q_options", None) or {})
            kwargs["q_options"] = {**q_options, "broker": broker}
        self.id = async_task(self._func, *self._args, **kwargs)
        self.started = True
        return self.id

    def result(self, wait: float = 0) -> Any:
        """The task's result (``wait`` ms for it), or None (also before ``run``)."""
        if not self.started or self.id is None:
            return None
        return result(self.id, wait=wait)

    def fetch(self, wait: float = 0) -> Any:
        """The task's ``Task`` row (``wait`` ms for it), or None."""
        if not self.started or self.id is None:
            return None
        return fetch(self.id, wait=wait)

    def result_group(
        self, failures: bool = False, wait: float = 0, count: int | None = None
    ) -> Any:
        """The results of the task's group, or None (no group, or before ``run``)."""
        if not self.started or self.group is None:
            return None
        return result_group(self.group, failures=failures, wait=wait, count=count)

    def fetch_group(self, failures: bool = True, wait: float = 0, count: int | None = None) -> Any:
        """The ``Task`` rows of the task's group, or None."""
        if not self.started or self.group is None:
            return None
        return fetch_group(self.group, failures=failures, wait=wait, count=count)
