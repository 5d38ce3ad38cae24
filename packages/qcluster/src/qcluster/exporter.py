"""The cluster's one metrics endpoint, served by the sentinel with ``prometheus-client``.

At each scrape the sentinel adds up what its own recorder counted, what each live worker last
wrote to its cell, and what the workers that are gone had written (kept when each one exits, so
counters never go back when a worker is replaced), and reads the queue's sizes and the workers'
states. The reads that do I/O hold the sentinel's fork guard, as the beacon does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import start_http_server

from qcluster.errors import ClusterError
from qcluster.forking import ForkGuard
from qcluster.metrics import (
    COUNTERS,
    RUN_BUCKETS,
    WAIT_BUCKETS,
    MetricsCell,
    MetricsRecorder,
    Snapshot,
    counter,
    histogram,
    merge,
)
from qcluster.states import WorkerState
from qcore import Transport, get_logger

__all__ = ["ClusterCollector", "MetricsServer", "counter_families", "queue_families"]

log = get_logger("qcluster.exporter")

_HELP = {
    "enqueued": "Tasks handed to the transport (here: schedule firings)",
    "started": "Task runs started",
    "succeeded": "Tasks that returned, their record saved",
    "failed": "Tasks that failed, their Failure saved",
    "retried": "Tasks sent back for another attempt after their worker was lost",
    "timed_out": "Tasks killed past their timeout",
    "dead_lettered": "Tasks taken out of circulation",
    "replayed": "Deliveries of completed tasks refused",
    "hooks_failed": "Hooks that raised",
}


def counter_families(snapshot: Snapshot, *, skip: Sequence[str] = ()) -> Iterator[Metric]:
    """The ``q_tasks_*_total`` counters and the run/wait histograms of merged figures."""
    rows = snapshot["rows"]
    for name in COUNTERS:
        if name in skip:
            continue
        family = CounterMetricFamily(f"q_tasks_{name}", _HELP[name] + ".", labels=("queue", "func"))
        for (queue, func), row in sorted(rows.items()):
            family.add_metric((queue, func), counter(row, name))
        yield family
    if "run" not in skip:
        run = HistogramMetricFamily(
            "q_task_run_seconds",
            "Seconds a task's function ran (execution only).",
            labels=("queue", "func"),
        )
        for (queue, func), row in sorted(rows.items()):
            total, counts = histogram(row, "run")
            if sum(counts):
                run.add_metric((queue, func), _buckets(RUN_BUCKETS, counts), total)
        yield run
    if "wait" not in skip:
        wait = HistogramMetricFamily(
            "q_task_wait_seconds",
            "Seconds a task waited in the queue (from its enqueue, or its due time) to its start.",
            labels=("queue",),
        )
        by_queue: dict[str, tuple[float, list[float]]] = {}
        for (queue, _func), row in rows.items():
            total, counts = histogram(row, "wait")
            have = by_queue.get(queue)
            if have is None:
                by_queue[queue] = (total, list(counts))
            else:
                by_queue[queue] = (have[0] + total, [a + b for a, b in zip(have[1], counts)])
        for queue, (total, counts) in sorted(by_queue.items()):
            if sum(counts):
                wait.add_metric((queue,), _buckets(WAIT_BUCKETS, counts), total)
        yield wait


def _buckets(bounds: Sequence[float], counts: Sequence[float]) -> list[tuple[str, float]]:
    out, running = [], 0.0
    for bound, n in zip((*(repr(float(b)) for b in bounds), "+Inf"), counts):
        running += n
        out.append((bound, running))
    return out


def queue_families(transports: Sequence[Transport]) -> Iterator[Metric]:
    """``q_queue_*`` gauges, each read on its own: a failing read leaves a gap, not an error."""
    reads: tuple[tuple[str, str, str], ...] = (
        ("q_queue_depth", "Tasks waiting in the queue, ready to run.", "queue_size"),
        ("q_queue_delayed", "Tasks waiting for their due time (eta, countdown).", "delayed_size"),
        ("q_queue_in_flight", "Tasks fetched by a worker and not yet acked.", "inflight_size"),
        ("q_queue_dead", "Dead-lettered tasks.", "dead_size"),
    )
    for name, doc, method in reads:
        family = GaugeMetricFamily(name, doc, labels=("queue",))
        for transport in transports:
            try:
                value = float(getattr(transport, method)())
            except Exception as exc:
                log.debug("metrics.read_failed", metric=name, error=repr(exc))
                continue
            family.add_metric((transport.queue,), value)
        yield family


class ClusterCollector:
    """A ``prometheus-client`` collector of one cluster: the sum of its processes' figures."""

    def __init__(
        self,
        recorder: MetricsRecorder,
        transport: Transport,
        live: Callable[[], list[Any]],
        guard: ForkGuard,
    ) -> None:
        self.recorder = recorder
        self.transport = transport
        self.live = live
        self.guard = guard
        self.cells: dict[int, MetricsCell] = {}
        self.gone: Snapshot = {"rows": {}, "exits": {}}
        self._lock = threading.Lock()

    def cell(self, index: int, cell: MetricsCell) -> None:
        """Worker ``index`` writes to ``cell``."""
        self.cells[index] = cell

    def worker_gone(self, index: int) -> None:
        """Keep what worker ``index`` counted (it exited), and empty its cell for the next."""
        cell = self.cells.get(index)
        if cell is None:
            return
        with self._lock:
            self.gone = merge([self.gone, cell.read()])
            cell.clear()

    def figures(self) -> Snapshot:
        """Everything counted so far, by every process of the cluster."""
        with self._lock:
            snaps = [self.gone, self.recorder.snapshot()]
            snaps.extend(cell.read() for cell in self.cells.values())
            return merge(snaps)

    def collect(self) -> Iterator[Metric]:
        figures = self.figures()
        yield from counter_families(figures, skip=())
        exits = CounterMetricFamily(
            "q_worker_exits",
            "Worker processes that exited (and were replaced while running), by reason.",
            labels=("reason",),
        )
        for reason, n in sorted(figures["exits"].items()):
            exits.add_metric((reason,), n)
        yield exits
        workers = GaugeMetricFamily("q_workers", "Worker processes by state.", labels=("state",))
        states = dict.fromkeys((s.name.lower() for s in WorkerState), 0)
        for handle in self.live():
            states[handle.slot.read().state.name.lower()] += 1
        for state, n in states.items():
            workers.add_metric((state,), n)
        yield workers
        busy = GaugeMetricFamily(
            "q_workers_busy", "Workers running a task, saving or calling a hook."
        )
        busy.add_metric((), sum(states[s] for s in ("running", "saving", "hook")))
        yield busy
        with self.guard:  # Redis reads: never while the sentinel forks
            families = list(queue_families([self.transport]))
        yield from families


class MetricsServer:
    """The HTTP endpoint (``/metrics``, or any path) of one cluster."""

    def __init__(self, collector: ClusterCollector, *, host: str, port: int) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(collector)
        self.host = host
        self.port = port
        self._server: Any = None

    def start(self) -> int:
        """Listen; returns the port. A port in use is a :class:`ClusterError` naming it."""
        try:
            self._server, _thread = start_http_server(
                self.port, addr=self.host, registry=self.registry
            )
        except OSError as exc:
            raise ClusterError(
                f"metrics_port {self.port} on {self.host} cannot be used ({exc.strerror or exc}): "
                "choose another port (or stop what listens there), or set metrics_port to None"
            ) from None
        self.port = int(self._server.server_address[1])
        return self.port

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
