"""A :class:`qcluster.Cluster` for a Django site: Redis transport, the Django result store,
hooks called with the saved ``Task``, the task codec from ``SECRET_KEY``, Django set up in
each worker process, and the cluster's events sent as Django's signals (:mod:`qdjango.signals`)."""

from __future__ import annotations

from typing import Any

from qcluster import Cluster
from qdjango import connection
from qdjango.conf import get_settings, task_codec
from qdjango.hooks import DjangoHookRunner
from qdjango.process import DjangoContext, close_connections
from qdjango.signals import signal_bus
from qdjango.store import DjangoResultStore

__all__ = ["build_cluster", "close_connections"]


def build_cluster(**overrides: Any) -> Cluster:
    """A cluster configured by ``Q_CLUSTER``, with any setting overridden by keyword
    (``workers=2``). Raises :class:`qcore.ConfigError` naming every bad setting."""
    conf = get_settings()
    config = conf.cluster.with_changes(**overrides) if overrides else conf.cluster
    store = DjangoResultStore.from_settings()
    return Cluster(
        config,
        transport=connection.cluster_transport(config.queue, config.max_attempts),
        store=store,
        hook_runner=DjangoHookRunner(using=store.using, context=store.context),
        status_board=connection.status_board(config.queue),
        codec=task_codec(),
        worker_init=DjangoContext.capture(store.using).ensure,
        # Only the signals with receivers (connected in an AppConfig.ready()): a worker does
        # not build the events of the others.
        events=signal_bus(using=store.using, context=store.context, connected_only=True),
    )
