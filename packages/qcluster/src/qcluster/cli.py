"""The ``qcluster`` command: ``run`` a cluster on Redis, ``info`` and ``monitor`` clusters."""

from __future__ import annotations

import argparse
import functools
import hashlib
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

from qcluster.cluster import Cluster, codec_from_env
from qcluster.config import ClusterConfig
from qcore import (
    ConfigError,
    QError,
    ScheduleSpec,
    ScheduleType,
    check_cron,
    configure_logging,
    get_logger,
    mask_url,
    resolve,
)

__all__ = ["RUN_SETTINGS", "build_parser", "cron_schedule", "import_modules", "main"]

log = get_logger("qcluster.cli")

URL_ENV = "Q_REDIS_URL"
DEFAULT_URL = "redis://127.0.0.1:6379/0"

RUN_SETTINGS = {
    "queue": "queue",
    "name": "name",
    "workers": "workers",
    "shards": "shards",
    "timeout": "timeout",
    "retry": "retry",
    "max_attempts": "max_attempts",
    "recycle": "recycle",
    "max_rss": "max_rss",
    "prefetch": "prefetch",
    "async_concurrency": "async_concurrency",
    "grace": "grace",
    "start_method": "start_method",
    "json_logs": "log_json",
    "log_level": "log_level",
    "log_args": "log_args",
    "fail_fast": "fail_fast",
    "scheduler": "scheduler",
    "catch_up": "catch_up",
    "time_zone": "time_zone",
    "metrics_port": "metrics_port",
    "metrics_host": "metrics_host",
}
"""``qcluster run`` options (argparse dests) that set a :class:`ClusterConfig` field; an option
left out falls back to ``Q_<SETTING>`` in the environment, then the field's default."""


def import_modules(modules: Sequence[str]) -> None:
    """Import task modules (in the sentinel, and again in each worker under spawn)."""
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ConfigError(f"cannot import task module {module!r}: {exc}") from exc


def build_parser() -> argparse.ArgumentParser:
    """The ``qcluster`` command line (the settings reference is generated from its help)."""
    parser = argparse.ArgumentParser(
        prog="qcluster", description="Q's task cluster for plain Python, on Redis."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def connection(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--redis-url",
            default=None,
            help=f"Redis URL (default ${URL_ENV} or {DEFAULT_URL})",
        )
        p.add_argument(
            "--status-namespace", default="default", help="where clusters publish their status"
        )

    run = sub.add_parser("run", help="run a cluster in the foreground (Ctrl+C stops it)")
    connection(run)
    run.add_argument(
        "--queue",
        action="append",
        default=None,
        help="queue to consume (default: 'default'); repeat it to serve several queues in strict "
        "order (--queue high --queue low), or give each a weight to serve them in proportion "
        "(--queue a=3 --queue b=1)",
    )
    run.add_argument(
        "--shards",
        type=int,
        default=None,
        help="the queue's shard count (each queue's, with several): its tasks spread over N "
        "hash tags, so over several Redis Cluster nodes; every producer and cluster of the "
        "queue must use the same",
    )
    run.add_argument("--name", default=None, help="cluster name shown in status and logs")
    run.add_argument("--workers", type=int, default=None, help="worker processes (default: CPUs)")
    run.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="module to import before starting (repeatable)",
    )
    run.add_argument("--timeout", type=float, default=None, help="seconds a task may run")
    run.add_argument("--retry", type=float, default=None, help="heartbeat time-to-live, seconds")
    run.add_argument(
        "--max-attempts",
        type=int,
        default=None,
        help="deliveries before a task whose worker keeps dying is dead-lettered",
    )
    run.add_argument("--recycle", type=int, default=None, help="replace a worker after N tasks")
    run.add_argument("--max-rss", type=int, default=None, help="replace a worker above N KiB")
    run.add_argument(
        "--prefetch", type=int, default=None, help="most tasks a worker takes in one fetch"
    )
    run.add_argument(
        "--async-concurrency",
        type=int,
        default=None,
        help="coroutine tasks (async def) a worker awaits at once (default 1)",
    )
    run.add_argument("--grace", type=float, default=None, help="seconds to finish on stop")
    run.add_argument(
        "--start-method",
        choices=("fork", "forkserver", "spawn"),
        default=None,
        help="how worker processes are started",
    )
    run.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve Prometheus metrics of the whole cluster on this port (0: any free port)",
    )
    run.add_argument(
        "--metrics-host",
        default=None,
        help="address the metrics endpoint listens on (default 0.0.0.0)",
    )
    run.add_argument(
        "--result-ttl",
        type=float,
        default=7 * 24 * 3600,
        help="seconds a saved result is kept in Redis, and a completed task remembered so "
        "that a copy of it is refused",
    )
    run.add_argument("--result-namespace", default="default", help="the result store's namespace")
    run.add_argument(
        "--secret-env",
        default="Q_SECRET_KEY",
        help="environment variable holding the signing secret (default Q_SECRET_KEY)",
    )
    run.add_argument(
        "--schedule",
        dest="schedules",
        action="append",
        default=[],
        metavar="CRON=FUNC",
        help="fire FUNC (a dotted path) on a cron expression, once per due time across every "
        "cluster, e.g. '*/5 * * * *=app.tasks.sweep' (repeatable)",
    )
    run.add_argument(
        "--no-scheduler",
        dest="scheduler",
        action="store_false",
        default=None,
        help="do not fire schedules from this cluster",
    )
    run.add_argument(
        "--no-catch-up",
        dest="catch_up",
        action="store_false",
        default=None,
        help="after downtime, fire a missed schedule once instead of once per missed run",
    )
    run.add_argument(
        "--time-zone", default=None, help="time zone of --schedule cron expressions (default UTC)"
    )
    run.add_argument("--json-logs", action="store_true", default=None, help="JSON log lines")
    run.add_argument("--log-level", default=None, help="debug, info, warning, error or critical")
    run.add_argument(
        "--log-args",
        action="store_true",
        default=None,
        help="let task args, results and error messages into the logs (off by default: "
        "they may hold personal data); the debug level shows args and results",
    )

    run.add_argument(
        "--fail-fast",
        action="store_true",
        default=None,
        help="exit with an error when Redis cannot be reached at start-up (default: say so "
        "and try again until it answers)",
    )

    info = sub.add_parser("info", help="print live clusters and queue sizes once")
    connection(info)
    info.add_argument("--queue", action="append", default=[], help="queue(s) to size")

    monitor = sub.add_parser("monitor", help="a live view of clusters and queues")
    connection(monitor)
    monitor.add_argument("--queue", action="append", default=[], help="queue(s) to size")
    monitor.add_argument(
        "--interval", type=float, default=0.25, help="seconds between frames (default 0.25)"
    )
    monitor.add_argument("--once", action="store_true", help="print one frame and exit")
    return parser


def _config(args: argparse.Namespace) -> ClusterConfig:
    overrides: dict[str, Any] = {}
    for option, setting in RUN_SETTINGS.items():
        value = getattr(args, option)
        if value is not None:
            overrides[setting] = value
    queues = overrides.pop("queue", None)
    if queues is not None:
        if len(queues) == 1 and "=" not in queues[0]:
            overrides["queue"] = queues[0]
        else:  # several queues: the transport is built on the first (where it connects)
            overrides["queues"] = queues
            overrides["queue"] = queues[0].partition("=")[0].strip()
    return ClusterConfig.from_env(**overrides)


def cron_schedule(text: str, *, time_zone: str = "UTC") -> ScheduleSpec:
    """The schedule of ``--schedule 'CRON=dotted.path'``; its id is derived from the two, so
    every cluster started with the same option declares the same schedule."""
    cron, sep, func = text.rpartition("=")
    cron, func = cron.strip(), func.strip()
    if not sep or not cron or not func:
        raise ConfigError(
            f"--schedule takes CRON=FUNC, such as '*/5 * * * *=app.tasks.sweep', not {text!r}"
        )
    if not all(part.isidentifier() for part in func.split(".")) or "." not in func:
        raise ConfigError(f"--schedule: {func!r} is not a dotted path such as app.tasks.sweep")
    digest = hashlib.sha256(f"{cron}|{time_zone}".encode()).hexdigest()[:8]
    return ScheduleSpec(
        id=f"cli:{func}:{digest}",
        func=func,
        schedule_type=ScheduleType.CRON,
        cron=check_cron(cron),
        name=f"{func} ({cron})",
        time_zone=time_zone,
    )


def _url(args: argparse.Namespace) -> str:
    return str(args.redis_url or os.environ.get(URL_ENV) or DEFAULT_URL)


def _run(args: argparse.Namespace) -> int:
    from qredis import RedisResultStore, RedisStatusBoard, RedisTransport

    config = _config(args)
    configure_logging(
        json=config.log_json, level=config.log_level, secret_names=config.secret_names
    )
    url = _url(args)
    import_modules(args.imports)
    schedules = [cron_schedule(text, time_zone=config.time_zone) for text in args.schedules]
    for spec in schedules:
        resolve(spec.func)  # a typo fails here, not at the first firing
    codec = codec_from_env(args.secret_env)
    # A completed task is remembered (its copies refused) for as long as its result is kept.
    transport = RedisTransport(
        config.queue, url=url, max_attempts=config.max_attempts, replay_window=args.result_ttl
    )
    store = RedisResultStore(url, namespace=args.result_namespace, ttl=args.result_ttl, codec=codec)
    board = RedisStatusBoard(url, namespace=args.status_namespace)
    log.info("cluster.config", redis=mask_url(url), **config.as_dict())
    cluster = Cluster(
        config,
        transport=transport,
        store=store,
        status_board=board,
        codec=codec,
        worker_init=functools.partial(import_modules, tuple(args.imports)),
        schedules=schedules,
    )
    return cluster.run()


def _views(args: argparse.Namespace, *, reasons: bool = False) -> tuple[Any, Any]:
    from qredis import (
        RedisStatusBoard,
        RedisTransport,
        producer_kwargs,
        served_queues,
        stored_shards,
    )

    url = _url(args)
    bounded = producer_kwargs({})  # a view answers within a producer's bounds, not a cluster's
    board = RedisStatusBoard(url, namespace=args.status_namespace, **bounded)

    def read() -> dict[str, Any]:
        from qcluster.monitor import snapshot

        clusters = board.clusters()
        served = [q for c in clusters for q in served_queues(c)]
        names = list(dict.fromkeys([*args.queue, *served]))
        plain = [RedisTransport(name, url=url, **bounded) for name in names or ["default"]]
        transports = [t.sharded(stored_shards(t)) for t in plain]  # every shard's tasks
        try:
            codec = codec_from_env()
        except QError:  # no secret here: the schedules cannot be verified, so not shown
            stores = []
        else:
            stores = [t.schedules(codec) for t in transports]
        snap = snapshot(board, transports, stores, reasons=reasons)
        snap["clusters"] = clusters
        snap["redis"] = mask_url(url)
        return snap

    return board, read


def _console() -> Any:
    from rich.console import Console

    # Piped output (a log, a test) gets room for full ids instead of 80 columns of "…".
    return Console() if sys.stdout.isatty() else Console(width=200)


def _info(args: argparse.Namespace) -> int:
    from qcluster.monitor import render

    _, read = _views(args, reasons=True)
    _console().print(render(read(), workers=True))
    return 0


def _monitor(args: argparse.Namespace) -> int:
    from qcluster.monitor import live, render

    _, read = _views(args)
    if args.once:
        _console().print(render(read()))
        return 0
    live(read, interval=args.interval, console=_console())
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``qcluster`` console script."""
    args = build_parser().parse_args(argv)
    handlers = {"run": _run, "info": _info, "monitor": _monitor}
    try:
        code = handlers[args.command](args)
    except QError as exc:
        print(f"qcluster: {exc}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        code = 130
    raise SystemExit(code)


if __name__ == "__main__":
    main()
