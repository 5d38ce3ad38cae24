"""``manage.py qinfo``: clusters, queue sizes and the last 24 hours of results, once."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from qcore import QError


class Command(BaseCommand):
    help = "Show Q's clusters, queue sizes and task counts and rates over the last 24 hours."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--config", action="store_true", help="also print the settings")
        parser.add_argument("--ids", action="store_true", help="only print live cluster ids")

    def handle(self, *args: Any, **options: Any) -> None:
        from rich.console import Console

        from qdjango.monitor import info_view, read_snapshot

        out = getattr(self.stdout, "_out", sys.stdout)
        console = Console(file=out, width=160, soft_wrap=False)
        try:
            snap = read_snapshot(reasons=not options["ids"])
        except QError as exc:
            raise CommandError(f"cannot read the queue: {exc}") from exc
        if options["ids"]:
            for cluster in snap["clusters"]:
                self.stdout.write(str(cluster.get("cluster_id")))
            return
        console.print(info_view(snap, config=options["config"]))
