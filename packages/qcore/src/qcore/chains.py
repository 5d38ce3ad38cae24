"""Chains: tasks run one after the other, each link queued by the step that acks the one
before it (after its record is saved), so a crash between two links neither loses nor doubles
the next. The chain's state lives in the transport (Redis), never in a process.

:func:`chain_messages` builds every link's message up front (ids known at once, all signed by
the producer); :func:`start_chain` stores them and queues the first. Each link carries the
options ``chain`` (the chain's id: its group) and ``chain_index`` (1-based).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from qcore.codec import Codec
from qcore.enqueue import build_message
from qcore.errors import ConfigError
from qcore.events import EventBus, TaskEnqueued
from qcore.message import TaskMessage
from qcore.naming import new_id
from qcore.protocols import AsyncTransport, Transport

__all__ = ["ChainState", "astart_chain", "chain_links", "chain_messages", "start_chain"]

TaskFunc = Callable[..., Any] | str


@dataclass(frozen=True, slots=True)
class ChainState:
    """Where a chain is: ``length`` links, ``done`` finished, ``state`` ``"running"``,
    ``"done"`` or ``"stopped"`` (a link failed with ``stop_on_failure``: ``stopped_at``)."""

    length: int
    done: int
    state: str
    stopped_at: int | None = None


def chain_links(
    chain: Sequence[Any],
) -> list[tuple[TaskFunc, tuple[Any, ...], dict[str, Any]]]:
    """``(func, args, kwargs)`` for each element of ``chain``: a callable, a dotted path, or a
    tuple ``(func,)``, ``(func, args)`` or ``(func, args, kwargs)`` (django-q2's forms).

    Raises :class:`ConfigError` naming the element that is none of those, or for an empty chain.
    """
    if isinstance(chain, str | bytes) or not isinstance(chain, Sequence):
        raise ConfigError(f"a chain is a list of links, not {type(chain).__name__}")
    if not chain:
        raise ConfigError("a chain needs at least one link; this one is empty")
    links = []
    for position, element in enumerate(chain, start=1):
        func: Any = element
        args: Any = ()
        kwargs: Any = {}
        if isinstance(element, tuple):
            if not 1 <= len(element) <= 3:
                raise ConfigError(
                    f"link {position} of the chain is a tuple of {len(element)} items; "
                    "give (func,), (func, args) or (func, args, kwargs)"
                )
            func = element[0]
            args = element[1] if len(element) > 1 else ()
            kwargs = element[2] if len(element) > 2 else {}
        if not (callable(func) or (isinstance(func, str) and func)):
            raise ConfigError(
                f"link {position} of the chain is {func!r}: a link is a callable, a dotted "
                "path or a (func, args, kwargs) tuple"
            )
        if not isinstance(args, tuple | list):
            args = (args,)
        if not isinstance(kwargs, Mapping):
            raise ConfigError(f"link {position} of the chain has kwargs {kwargs!r}, not a dict")
        links.append((func, tuple(args), dict(kwargs)))
    return links


def chain_messages(
    chain: Sequence[Any],
    *,
    group: str | None = None,
    q_options: Mapping[str, Any] | None = None,
) -> tuple[str, list[TaskMessage]]:
    """The chain's id (``group``, or a new one) and its links' messages, in order.

    Every link belongs to the group. ``q_options`` apply to every link; a link's own
    ``q_options`` (a key of its kwargs, as with ``async_task``) win for that link.
    """
    links = chain_links(chain)
    chain_id = group if group is not None else new_id()
    messages = []
    for index, (func, args, kwargs) in enumerate(links, start=1):
        own = kwargs.pop("q_options", None)
        options = {**(q_options or {}), **(own or {})}
        message = build_message(func, args, kwargs, group=chain_id, q_options=options or None)
        messages.append(message.with_options(chain=chain_id, chain_index=index))
    return chain_id, messages


def start_chain(
    transport: Transport,
    codec: Codec,
    chain_id: str,
    messages: Sequence[TaskMessage],
    *,
    stop_on_failure: bool = True,
    events: EventBus | None = None,
) -> None:
    """Sign every link, store the chain and queue its first link (one atomic step).

    Raises :class:`ConfigError` when a chain of that id (group) is running already.
    """
    items, extra = _chain_items(codec, messages)
    started = transport.start_chain(chain_id, items, stop_on_failure=stop_on_failure, **extra)
    _started(started, chain_id, messages, transport.queue, events)


async def astart_chain(
    transport: AsyncTransport,
    codec: Codec,
    chain_id: str,
    messages: Sequence[TaskMessage],
    *,
    stop_on_failure: bool = True,
    events: EventBus | None = None,
) -> None:
    """:func:`start_chain` for an asyncio producer: the same signed links and step, awaited."""
    items, extra = _chain_items(codec, messages)
    started = await transport.start_chain(chain_id, items, stop_on_failure=stop_on_failure, **extra)
    _started(started, chain_id, messages, transport.queue, events)


def _chain_items(
    codec: Codec, messages: Sequence[TaskMessage]
) -> tuple[list[tuple[str, bytes, int | None]], dict[str, Any]]:
    """The signed links ``(id, payload, max_attempts)``, and their priorities as a keyword
    (only when a link has one: a transport written before priorities still takes the rest)."""
    items = [(m.id, codec.encode_message(m), m.options.max_attempts) for m in messages]
    priorities = [m.options.priority or 0 for m in messages]
    return items, ({"priorities": priorities} if any(priorities) else {})


def _started(
    started: bool,
    chain_id: str,
    messages: Sequence[TaskMessage],
    queue: str,
    events: EventBus | None,
) -> None:
    if not started:
        raise ConfigError(f"a chain of group {chain_id!r} exists already; give another group")
    if events is not None and events.wants(TaskEnqueued):
        first = messages[0]
        events.emit(TaskEnqueued(first.id, first, queue))
