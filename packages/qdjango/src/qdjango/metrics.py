"""Prometheus metrics of a Django site's side of Q: what it enqueued, and the queue as it is.

Mount :func:`metrics_view` in the site's urls (``path("q/metrics", metrics_view)``) and scrape
it beside each cluster's own endpoint (``Q_CLUSTER["metrics_port"]``). It serves:

- ``q_tasks_enqueued_total{queue, func}``: tasks this site handed to Redis (``async_task``,
  the admin's retries...), counted by a subscriber of the producers' event bus. With several
  web processes, set ``PROMETHEUS_MULTIPROC_DIR`` as ``prometheus-client`` documents: the view
  then adds up every process's counts.
- ``q_queue_depth``, ``q_queue_delayed``, ``q_queue_in_flight``, ``q_queue_dead`` of the
  configured queue, and ``q_clusters`` (clusters publishing their status), read at each scrape.

Counters of what the clusters ran are their own endpoints' (the sentinel adds up its workers).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

from django.http import HttpRequest, HttpResponse
from prometheus_client import CollectorRegistry, Counter, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder

from qcluster.exporter import queue_families
from qcluster.metrics import MAX_FUNCS, OTHER
from qcore import EventBus, get_logger
from qcore.events import TaskEnqueued

__all__ = ["ProducerMetrics", "metrics_view", "producer_metrics"]

log = get_logger("qdjango.metrics")

_registry = CollectorRegistry(auto_describe=True)
_lock = threading.Lock()
_made: list[ProducerMetrics] = []


class ProducerMetrics:
    """Counts the tasks a process enqueued (a subscriber of its producers' bus)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.enqueued = Counter(
            "q_tasks_enqueued",
            "Tasks handed to the transport by this site (async_task, retries).",
            ("queue", "func"),
            registry=registry,
        )
        self._funcs: dict[str, set[str]] = {}
        # The labelled child of each (queue, func) seen: prometheus_client's labels() reads
        # the environment on every call (tools/bench/README.md, 'issue 14').
        self._children: dict[tuple[str, str], Any] = {}

    def subscribe(self, bus: EventBus) -> EventBus:
        bus.subscribe(TaskEnqueued, self.on_enqueued)
        return bus

    def on_enqueued(self, event: TaskEnqueued) -> None:
        func = event.message.func
        key = (event.queue, func if type(func) is str else event.message.func_path)
        child = self._children.get(key)
        if child is None:
            child = self._child(*key)
        child.inc()

    def _child(self, queue: str, func: str) -> Any:
        funcs = self._funcs.setdefault(queue, set())
        label = func
        if func not in funcs:
            if len(funcs) >= MAX_FUNCS:
                label = OTHER
            funcs.add(label)
        child = self.enqueued.labels(queue, label)
        if len(self._children) < 4 * MAX_FUNCS:
            self._children[(queue, func)] = child
        return child


def producer_metrics() -> ProducerMetrics:
    """This process's producer counters (made once)."""
    with _lock:
        if not _made:
            _made.append(ProducerMetrics(_registry))
        return _made[0]


class _QueueCollector:
    """The configured queue's gauges and the number of live clusters, read at each scrape."""

    def collect(self) -> Iterator[Metric]:
        from qdjango import connection
        from qdjango.conf import get_settings

        transport = connection.transport()
        yield from queue_families([transport])
        clusters = GaugeMetricFamily(
            "q_clusters", "Clusters publishing their status on this queue.", labels=("queue",)
        )
        try:
            live = connection.status_board().clusters()
        except Exception as exc:
            log.debug("metrics.read_failed", metric="q_clusters", error=repr(exc))
        else:
            clusters.add_metric((get_settings().queue,), len(live))
        yield clusters


def _scrape_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        producer_metrics()
        registry.register(_registry)
    registry.register(_QueueCollector())  # type: ignore[arg-type]
    return registry


def metrics_view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """The site's Q metrics in Prometheus's text format (mount it where Prometheus scrapes;
    it shows queue sizes and function names, so keep it off the public internet)."""
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return HttpResponse(encoder(_scrape_registry()), content_type=content_type)
