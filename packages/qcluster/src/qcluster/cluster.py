"""``Cluster``: the public face of the sentinel and its workers.

``run()`` supervises in the foreground (the ``qcluster run`` command); ``start()`` runs the
same sentinel in a child process and returns its pid; ``stop()`` stops it gracefully. A cluster
is a context manager: ``with Cluster(...):`` starts it and stops it.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import uuid
from collections.abc import Callable, Mapping, Sequence
from multiprocessing.process import BaseProcess
from types import TracebackType
from typing import Any

from qcluster.beacon import PeriodicJob
from qcluster.config import ClusterConfig
from qcluster.errors import ClusterError
from qcluster.metrics import MetricsRecorder
from qcluster.reporting import check_reporters, error_reporters
from qcluster.scheduler import ScheduleFired, Scheduler
from qcluster.sentinel import Sentinel
from qcluster.tasklog import cluster_events
from qcluster.worker import WorkerSpec
from qcore import (
    FALLBACKS_ENV,
    SECRET_ENV,
    Codec,
    ConfigError,
    EventBus,
    HookRunner,
    QueueSource,
    ResultStore,
    ScheduleSource,
    ScheduleSpec,
    ScheduleStore,
    ShardSource,
    StatusBoard,
    Transport,
    codec_for,
    configure_logging,
    get_logger,
)
from qcore.events import TaskEnqueued
from qcore.log import is_configured

__all__ = ["Cluster", "codec_from_env"]

log = get_logger("qcluster.cluster")


def codec_from_env(
    secret_env: str = SECRET_ENV, fallbacks_env: str = FALLBACKS_ENV, **codec_options: Any
) -> Codec:
    """A codec whose keys derive from ``$Q_SECRET_KEY`` (and comma-separated fallbacks)."""
    return codec_for(secret_env=secret_env, fallbacks_env=fallbacks_env, **codec_options)


class Cluster:
    """A supervised cluster of worker processes consuming one transport.

    ``transport`` and ``store`` implement :class:`qcore.Transport` and
    :class:`qcore.ResultStore`; ``hook_runner`` calls hooks (default ``hook(record)``);
    ``status_board`` receives the status every ``config.status_interval`` seconds;
    ``codec`` verifies payloads (default: keys from ``$Q_SECRET_KEY``); ``worker_init`` is
    called once in each worker process before it fetches anything (``django.setup()``, say);
    ``events`` is a :class:`qcore.EventBus` whose subscribers see the cluster's events (task
    events in the worker processes, supervision events in the sentinel), after the task log.

    Schedules: unless ``config.scheduler`` is off, the sentinel fires the schedules kept beside
    the queue (a transport that keeps them, such as :class:`qredis.RedisTransport`, or
    ``schedule_store``), each due time once whatever the number of clusters. ``schedules``
    (:class:`qcore.ScheduleSpec`) are added when the cluster starts. ``clock`` (epoch seconds)
    replaces the store's (Redis's) clock; ``on_schedule_fired`` receives a
    :class:`~qcluster.scheduler.ScheduleFired` for each firing this cluster applied;
    ``on_scheduler_start`` is called once by the scheduler before its first pass.

    Several queues: ``queues`` (or ``config.queues``), names in strict order or a dict of name
    to weight, served through ``transport`` (which must implement :class:`qcore.QueueSource`,
    as :class:`qredis.RedisTransport` does; its own queue is then only where it connects).

    Sharded queue: ``shards`` (or ``config.shards``) spreads the queue over that many shards,
    served through ``transport`` (which must implement :class:`qcore.ShardSource`, as
    :class:`qredis.RedisTransport` does). The count is checked against the one the backend
    keeps before the workers start.

    Everything passed must be picklable: each worker rebuilds its own copy and opens its
    own connections.
    """

    def __init__(
        self,
        config: ClusterConfig | None = None,
        *,
        transport: Transport,
        store: ResultStore,
        hook_runner: HookRunner | None = None,
        status_board: StatusBoard | None = None,
        codec: Codec | None = None,
        worker_init: Callable[[], None] | None = None,
        events: EventBus | None = None,
        schedules: Sequence[ScheduleSpec] = (),
        schedule_store: ScheduleStore | None = None,
        clock: Callable[[], float] | None = None,
        on_schedule_fired: Callable[[ScheduleFired], Any] | None = None,
        on_scheduler_start: Callable[[], Any] | None = None,
        queues: Sequence[str] | Mapping[str, int] | None = None,
        shards: int | None = None,
    ) -> None:
        self.config = config if config is not None else ClusterConfig()
        if not isinstance(self.config, ClusterConfig):
            raise ConfigError(f"config must be a ClusterConfig, not {type(config).__name__}")
        if queues is not None:
            self.config = self.config.with_changes(queues=queues)
        if shards is not None:
            self.config = self.config.with_changes(shards=shards)
        _check_protocol("transport", transport, Transport)
        transport = _serving(transport, self.config)
        _check_protocol("store", store, ResultStore)
        if status_board is not None:
            _check_protocol("status_board", status_board, StatusBoard)
        self.transport = transport
        self.store = store
        self.hook_runner = hook_runner
        self.status_board = status_board
        self.codec = codec if codec is not None else codec_from_env()
        self.worker_init = worker_init
        if events is not None and not isinstance(events, EventBus):
            raise ConfigError(f"events must be a qcore.EventBus, not {type(events).__name__}")
        self.events = events
        check_reporters(self.config.error_reporter)
        self.scheduler = self._scheduler(
            schedules, schedule_store, clock, on_schedule_fired, on_scheduler_start
        )
        self.cluster_id = ""
        self._process: BaseProcess | None = None

    # -- foreground -------------------------------------------------------------------------

    def run(self) -> int:
        """Supervise in this process until SIGTERM or SIGINT; returns the exit code (0).

        Must be called from the main thread (it installs signal handlers).
        """
        spec = self._spec()
        sentinel = Sentinel(spec, status_board=self.status_board, jobs=self._jobs())
        return sentinel.run()

    # -- background -------------------------------------------------------------------------

    def start(self, *, wait: float | None = 60.0) -> int:
        """Run the cluster in a child process; return its pid.

        With ``wait`` (seconds), return once every worker is up, raising
        :class:`~qcluster.errors.ClusterError` if the cluster died or did not come up in time.
        """
        if self.is_running:
            raise ClusterError(f"cluster {self.cluster_id} is already running")
        spec = self._spec()
        ctx = multiprocessing.get_context(self.config.start_method)
        reader, writer = ctx.Pipe(duplex=False)
        process = ctx.Process(  # type: ignore[attr-defined]
            target=_sentinel_main,
            args=(spec, self.status_board, writer, self._jobs()),
            name=f"qcluster-sentinel-{self.config.name}",
        )
        process.start()
        writer.close()
        self._process = process
        if wait is not None:
            try:
                if not reader.poll(wait):
                    self.stop(timeout=5)
                    raise ClusterError(f"the cluster did not start within {wait:g} s")
                answer = reader.recv()
            except EOFError:
                process.join(5)
                raise ClusterError(
                    f"the cluster's sentinel exited during start-up (exit code "
                    f"{process.exitcode}); see its log"
                ) from None
            finally:
                reader.close()
            if isinstance(answer, tuple) and answer[:1] == ("error",):
                process.join(5)
                raise ClusterError(str(answer[1]))
        else:
            reader.close()
        pid: int = process.pid
        return pid

    @property
    def pid(self) -> int | None:
        """The sentinel's pid when started in the background."""
        return None if self._process is None else self._process.pid

    @property
    def is_running(self) -> bool:
        """True while a background sentinel is alive."""
        return self._process is not None and self._process.exitcode is None

    def stop(self, *, timeout: float | None = None, now: bool = False) -> int | None:
        """Stop a background cluster gracefully (``now``: kill workers at once).

        Waits up to ``timeout`` (default: the grace period plus 15 s) and kills the sentinel
        if it is still alive then. Returns the sentinel's exit code.
        """
        process = self._process
        if process is None:
            return None
        if process.exitcode is None and process.pid is not None:
            try:
                os.kill(process.pid, signal.SIGQUIT if now else signal.SIGTERM)
            except ProcessLookupError:
                pass
        process.join(timeout if timeout is not None else self.config.grace + 15)
        if process.exitcode is None:
            log.error("cluster.stop_timed_out", cluster_id=self.cluster_id, pid=process.pid)
            process.kill()
            process.join(10)
        return process.exitcode

    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- plumbing ---------------------------------------------------------------------------

    def _scheduler(
        self,
        schedules: Sequence[ScheduleSpec],
        store: ScheduleStore | None,
        clock: Callable[[], float] | None,
        on_fired: Callable[[ScheduleFired], Any] | None,
        on_start: Callable[[], Any] | None,
    ) -> Scheduler | None:
        for spec in schedules:
            if not isinstance(spec, ScheduleSpec):
                raise ConfigError(f"schedules must be qcore.ScheduleSpec, not {spec!r}")
        if store is None and isinstance(self.transport, ScheduleSource):
            store = self.transport.schedules(self.codec)
        if store is None:
            if schedules:
                raise ConfigError(
                    f"{type(self.transport).__name__} keeps no schedules: pass schedule_store, "
                    "or use a transport that keeps them (qredis.RedisTransport)"
                )
            return None
        if not self.config.scheduler:
            if schedules:
                raise ConfigError("schedules were given but the scheduler setting is off")
            return None
        return Scheduler(
            store,
            cluster=self.config.name,
            catch_up=self.config.catch_up,
            schedules=schedules,
            clock=clock,
            on_fired=on_fired,
            events=self.events,
            on_start=on_start,
        )

    def _jobs(self) -> list[PeriodicJob]:
        return [] if self.scheduler is None else [self.scheduler]

    def _spec(self) -> WorkerSpec:
        self.cluster_id = f"{self.config.name}-{uuid.uuid4().hex[:10]}"
        events = cluster_events(self.config, self.events)
        metrics = None
        if self.config.metrics_port is not None:
            metrics = MetricsRecorder(self.transport.queue)
            metrics.subscribe(events)
            if self.scheduler is not None:  # firings are counted as enqueued
                fired = self.events.copy() if self.events is not None else EventBus()
                fired.subscribe(TaskEnqueued, metrics.enqueued)
                self.scheduler.events = fired
        config = self.config
        for subscribe in error_reporters(
            config.error_reporter,
            queue=self.transport.queue,
            log_args=config.log_args,
            secret_names=config.secret_names,
        ):
            subscribe(events)
        spec = WorkerSpec(
            config=self.config,
            cluster_id=self.cluster_id,
            transport=self.transport,
            store=self.store,
            codec=self.codec,
            hook_runner=self.hook_runner,
            worker_init=self.worker_init,
            events=events,
            metrics=metrics,
        )
        named = {name: getattr(spec, name) for name in WorkerSpec.__dataclass_fields__}
        named["scheduler"] = self.scheduler
        for name in (
            "transport", "store", "codec", "hook_runner", "worker_init", "events", "scheduler",
        ):  # fmt: skip
            try:
                pickle.dumps(named[name])
            except Exception as exc:
                raise ConfigError(
                    f"the {name} cannot be sent to worker processes ({type(exc).__name__}: "
                    f"{exc}); pass objects built from parameters (a URL) and module-level "
                    "functions"
                ) from exc
        return spec


def _check_protocol(name: str, obj: object, protocol: type) -> None:
    if not isinstance(obj, protocol):
        raise ConfigError(
            f"{name} must implement qcore.{protocol.__name__}; "
            f"{type(obj).__name__} is missing some of its methods"
        )


def _sentinel_main(
    spec: WorkerSpec, board: StatusBoard | None, ready: Any, jobs: Sequence[PeriodicJob] = ()
) -> None:
    """The background sentinel process's entry point."""
    if not is_configured():
        configure_logging(
            json=spec.config.log_json,
            level=spec.config.log_level,
            secret_names=spec.config.secret_names,
        )
    sentinel = Sentinel(spec, status_board=board, watch_parent=True, ready=ready, jobs=jobs)
    raise SystemExit(sentinel.run())


def _serving(transport: Transport, config: ClusterConfig) -> Transport:
    """``transport``, or for a cluster of several queues the transport serving them, each
    spread over its shards when ``shards`` is more than 1."""
    if config.queues:
        if not isinstance(transport, QueueSource):
            raise ConfigError(
                f"{type(transport).__name__} cannot serve several queues "
                f"({', '.join(config.queues)}): use a transport that can (qredis.RedisTransport)"
            )
        names, weights = config.queue_plan()
        transport = transport.serving(names, weights)
    if config.shards == 1:
        return transport
    if not isinstance(transport, ShardSource):
        raise ConfigError(
            f"{type(transport).__name__} cannot shard a queue (shards={config.shards}):"
            " use a transport that can (qredis.RedisTransport)"
        )
    return transport.sharded(config.shards)
