"""``manage.py qcluster``: run a cluster in the foreground with the Django result store."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from qcore import QError, configure_logging


class Command(BaseCommand):
    # Django's system checks import and walk every URLconf, admin and template setting, in the
    # process every worker is forked from: time before the first task and memory in each
    # worker, for a command that serves none of them. Q_CLUSTER is validated by build_cluster
    # all the same; `manage.py check` runs the rest.
    requires_system_checks: list[str] = []
    help = "Run a Q cluster: workers that run the tasks of Q_CLUSTER's queue (Ctrl+C stops)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--workers", type=int, help="worker processes (Q_CLUSTER workers)")
        parser.add_argument(
            "--queue",
            action="append",
            help="queue to consume (Q_CLUSTER queue, or queues); repeat it for several queues in "
            "strict order, or give each a weight (--queue a=3 --queue b=1)",
        )
        parser.add_argument("--name", help="cluster name shown in status and logs")
        parser.add_argument("--json-logs", action="store_true", help="log JSON lines")
        parser.add_argument("--log-level", help="debug, info, warning, error")

    def handle(self, *args: Any, **options: Any) -> None:
        from qdjango.cluster import build_cluster, close_connections

        overrides: dict[str, Any] = {}
        for key in ("workers", "name", "log_level"):
            if options.get(key) is not None:
                overrides[key] = options[key]
        queues = options.get("queue")
        if queues:  # the command line's queues replace Q_CLUSTER's queue and queues
            several = len(queues) > 1 or "=" in queues[0]
            overrides["queues"] = tuple(queues) if several else ()
            overrides["queue"] = queues[0].partition("=")[0].strip()
        if options["json_logs"]:
            overrides["log_json"] = True
        try:
            cluster = build_cluster(**overrides)
        except QError as exc:
            raise CommandError(str(exc)) from exc
        config = cluster.config
        configure_logging(
            json=config.log_json, level=config.log_level, secret_names=config.secret_names
        )
        # Workers are separate processes with connections of their own; none may share ours.
        close_connections()
        code = cluster.run()
        if code:
            raise CommandError(f"the cluster exited with code {code}", returncode=int(code))
