"""What retries, chains and iterations add to a batch's path through :mod:`qcluster.flushing`:
the retry decision and its event, the chain links of a batch (acked by the step that queues
their successors), and the iterations a batch completes (see :mod:`qcore.retries`,
:mod:`qcore.chains`, :mod:`qcore.iters`). Tasks that use none of them pay a look at their
options."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

from qcore import Codec, ResultStore, RetryDefaults, TaskMessage, TaskResult, Transport
from qcore.events import TaskRetried
from qcore.iters import collate
from qcore.retries import retry_delay

__all__ = [
    "chain_links",
    "gather_iterations",
    "in_workflow",
    "retried_event",
    "retry_delay_for",
]

T = TypeVar("T")

Link = tuple[str, int, bool]


def _pick(own: T | None, default: T) -> T:
    return default if own is None else own


def retries_of(message: TaskMessage, defaults: RetryDefaults) -> int:
    """The retries the task may have: its own option, else the cluster's."""
    own = message.options.retries
    return defaults.retries if own is None else own


def retry_delay_for(
    message: TaskMessage, exc: BaseException, run: int, defaults: RetryDefaults
) -> float | None:
    """Seconds before the next run of a task whose ``run``-th run raised ``exc``, or None
    when it ends here (the task's own retry options, else the cluster's)."""
    retries = retries_of(message, defaults)
    if retries < run:
        return None
    options = message.options
    return retry_delay(
        exc,
        run,
        retries=retries,
        backoff=_pick(options.retry_backoff, defaults.retry_backoff),
        backoff_max=_pick(options.retry_backoff_max, defaults.retry_backoff_max),
        jitter=_pick(options.retry_jitter, defaults.retry_jitter),
        retry_on=_pick(options.retry_on, defaults.retry_on),
    )


def retried_event(
    message: TaskMessage, run: int, delay: float, error: str, defaults: RetryDefaults
) -> TaskRetried:
    """The event of a run that raised and goes back for another attempt."""
    return TaskRetried(
        message.id,
        message.name,
        message.func_path,
        run,
        retries_of(message, defaults) + 1,
        "the task raised; retried",
        delay,
        error,
    )


def in_workflow(message: TaskMessage | None) -> bool:
    """Whether the task is a chain's link or an iteration's call (its batch takes the
    workflow steps: the iteration's hash, the ack that queues the next link)."""
    if message is None:
        return False
    options = message.options
    return options.chain is not None or options.iter is not None


def chain_links(
    messages: Sequence[TaskMessage | None], records: Sequence[TaskResult]
) -> list[Link | None] | None:
    """For each task of a batch, ``(chain, index, succeeded)`` when it is a chain's link;
    None when the batch holds no link (it takes the plain ack)."""
    links: list[Link | None] | None = None
    for i, message in enumerate(messages):
        options = None if message is None else message.options
        if options is not None and options.chain is not None:
            if links is None:
                links = [None] * len(messages)
            links[i] = (options.chain, options.chain_index or 1, records[i].success)
    return links


def gather_iterations(
    transport: Transport,
    codec: Codec,
    store: ResultStore,
    finished: Iterable[tuple[TaskMessage | None, TaskResult]],
) -> None:
    """Put each finished call of an iteration in its hash; save the collated record of each
    iteration this batch completed. Both before the batch's ack (see qcore.iters)."""
    collated = []
    for message, record in finished:
        options = None if message is None else message.options
        if options is None or options.iter is None:
            continue
        records = transport.iter_put(
            options.iter, options.iter_index or 1, codec.encode(record), options.iter_size or 1
        )
        if records:
            collated.append(collate(options.iter, records, codec))
    if collated:
        store.save_many(collated)
