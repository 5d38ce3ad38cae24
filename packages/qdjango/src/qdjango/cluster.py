"""A :class:`qcluster.Cluster` for a Django site: Redis transport, the Django result store,
hooks called with the saved ``Task``, the task codec from ``SECRET_KEY``, Django set up in
each worker process, the cluster's events sent as Django's signals (:mod:`qdjango.signals`),
and schedule firings written back to their ``Schedule`` rows."""

from __future__ import annotations

import functools
from typing import Any

from django.db import router

from qcluster import Cluster
from qcluster.reporting import check_reporters
from qdjango import connection
from qdjango.conf import get_settings, task_codec
from qdjango.hooks import DjangoHookRunner
from qdjango.process import DjangoContext, close_connections
from qdjango.schedules import reconcile, record_firing
from qdjango.signals import signal_bus
from qdjango.store import DjangoResultStore

__all__ = ["build_cluster", "close_connections"]


def build_cluster(**overrides: Any) -> Cluster:
    """A cluster configured by ``Q_CLUSTER``, with any setting overridden by keyword
    (``workers=2``). Raises :class:`qcore.ConfigError` naming every bad setting."""
    conf = get_settings()
    config = conf.cluster.with_changes(**overrides) if overrides else conf.cluster
    check_reporters(config.error_reporter, dist="qtq-django")  # names this site's extra
    from qdjango.models import Schedule

    store = DjangoResultStore.from_settings()
    schedule_db = router.db_for_write(Schedule)
    transport = connection.cluster_transport(config.queue, config.max_attempts)
    codec = task_codec()
    return Cluster(
        config,
        transport=transport,
        store=store,
        hook_runner=DjangoHookRunner(using=store.using, context=store.context),
        status_board=connection.status_board(config.queue),
        codec=codec,
        worker_init=DjangoContext.capture(store.using).ensure,
        # Only the signals with receivers (connected in an AppConfig.ready()): a worker does
        # not build the events of the others.
        events=signal_bus(using=store.using, context=store.context, connected_only=True),
        on_schedule_fired=functools.partial(record_firing, using=schedule_db),
        # Rows saved while Redis was unreachable, or deleted outside the ORM: made right by
        # the scheduler once it reaches Redis (and retried until it does).
        on_scheduler_start=functools.partial(
            reconcile, redis_store=transport.schedules(codec), using=schedule_db
        ),
    )
