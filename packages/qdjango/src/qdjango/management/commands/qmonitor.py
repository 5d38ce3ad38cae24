"""``manage.py qmonitor``: a live view of the clusters and the queue (``--once``: one frame)."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from qcore import QError


class Command(BaseCommand):
    help = "Watch Q's clusters and queue live (Ctrl+C to leave); --once prints one frame."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--once", "--run-once", action="store_true", help="one frame, then exit"
        )
        parser.add_argument(
            "--interval", type=float, default=0.25, help="seconds between frames (default 0.25)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from rich.console import Console

        from qdjango.monitor import monitor_view, read_snapshot, watch

        out = getattr(self.stdout, "_out", sys.stdout)
        console = Console(file=out, width=160)
        try:
            if options["once"]:
                console.print(monitor_view(read_snapshot()))
            else:
                watch(console, interval=options["interval"])
        except QError as exc:
            raise CommandError(f"cannot read the queue: {exc}") from exc
