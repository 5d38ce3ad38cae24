"""``join()``: run what a transport holds now, in this process, through the worker's own code.

For tests and for ``sync`` execution: the tasks go through :class:`~qcluster.processing.Processor`
exactly as in a worker (verify, execute, save, ack, events, hooks), in the calling thread, with
no sleeps: what is queued runs, tasks those tasks queue run too, and ``join()`` returns when
the queue is empty. Delayed tasks run when due, or at once with ``run_delayed=True`` (on a
transport that offers ``make_due()``, such as :class:`qcore.testing.MemoryTransport`). No
timeout is enforced: there is no sentinel to kill a worker.
"""

from __future__ import annotations

import uuid

from qcluster.cluster import codec_from_env
from qcluster.config import ClusterConfig
from qcluster.processing import Processor
from qcluster.tasklog import cluster_events
from qcore import Codec, ConfigError, Delivery, EventBus, HookRunner, ResultStore, Transport

__all__ = ["join"]


def join(
    transport: Transport,
    store: ResultStore,
    *,
    codec: Codec | None = None,
    hook_runner: HookRunner | None = None,
    events: EventBus | None = None,
    config: ClusterConfig | None = None,
    run_delayed: bool = False,
    reraise: bool = False,
) -> int:
    """Run every task ``transport`` holds, saving into ``store``; returns how many ran.

    ``codec`` verifies the payloads (default: keys from ``$Q_SECRET_KEY``, as a cluster's);
    ``hook_runner`` and ``events`` as for :class:`~qcluster.Cluster`; ``config`` gives the
    defaults a cluster would (``save``, ``log_args``, ``log_level``, ``prefetch``,
    ``async_concurrency``: ``async def`` tasks are awaited in one event loop for the call).
    ``reraise=True``: once everything ran, was saved and hooked, the first exception a task
    raised is raised here. An error of the store or the transport is raised at once (a
    worker would retry it); what was not acked goes back to the queue.
    """
    config = config if config is not None else ClusterConfig()
    make_due = getattr(transport, "make_due", None)
    if run_delayed and not callable(make_due):
        raise ConfigError(
            f"run_delayed needs a transport with make_due() (qcore.testing.MemoryTransport), "
            f"not {type(transport).__name__}"
        )
    consumer = f"join.{uuid.uuid4().hex[:12]}"
    errors: list[BaseException] | None = [] if reraise else None
    processor = Processor(
        transport=transport,
        store=store,
        codec=codec if codec is not None else codec_from_env(),
        config=config,
        cluster_id=None,
        consumer=consumer,
        events=cluster_events(config, events),
        hook_runner=hook_runner,
        errors=errors,
        io_attempts=1,
    )
    ran = 0

    def refill(room: int) -> list[Delivery]:
        replayed: list[str] = []
        got = transport.fetch(consumer, room, 0, replayed=replayed)
        processor.replays_refused(replayed)
        return got

    try:
        while True:
            if run_delayed and callable(make_due):
                make_due()
            replayed: list[str] = []
            deliveries = transport.fetch(consumer, config.prefetch, 0, replayed=replayed)
            processor.replays_refused(replayed)
            if not deliveries and not replayed:
                break
            ran += processor.run(deliveries, refill)
    finally:
        processor.close()
        transport.release(consumer)
        transport.forget([consumer])
    if errors:
        raise errors[0]
    return ran
