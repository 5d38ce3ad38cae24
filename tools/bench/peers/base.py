"""What every benchmarked queue (Q or a peer) provides to the runner.

A peer object lives on two sides:

- the **harness side** (the runner, in the workspace's ``.venv``): where the peer is installed,
  the command that starts its workers, and how to tell that a task's result is in its store;
- the **client side** (``tools.bench.driver``, run by the peer's own interpreter): the
  library's public API to enqueue one task, or many at once.

This module and every ``peers/<name>.py`` import only the standard library at module level,
so the same file loads in the harness and in each peer's virtual environment; the library
itself is imported inside the client-side methods.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

__all__ = ["REPO", "Context", "Peer", "Workers"]

REPO = Path(__file__).resolve().parents[3]
"""The repository root: worker commands run here, with it on PYTHONPATH."""

Handle = Any
"""What a client-side enqueue returns for one task, for the harness to find its result."""


@dataclass
class Context:
    """What the harness knows about this run, handed to the harness-side methods."""

    redis_url: str
    bench_dir: Path
    log_dir: Path
    python: str
    """The interpreter of this peer's environment."""
    db: Mapping[str, str] = field(default_factory=dict)
    """For Django peers: ``engine`` (``sqlite``/``postgres``), ``name``, ``host``, ``port``,
    ``user``."""
    secret: str = "bench-secret-not-for-production-abcdefgh"

    def env(self) -> dict[str, str]:
        """Environment for a peer's worker and client processes."""
        env = dict(os.environ)
        venv = str(Path(self.python).parent.parent)
        env.pop("PYTHONHOME", None)
        # This machine sets it; the bench byte-compiles every environment once instead.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["VIRTUAL_ENV"] = venv
        env["PATH"] = f"{Path(self.python).parent}{os.pathsep}{env.get('PATH', '')}"
        env["PYTHONPATH"] = str(REPO)
        env["BENCH_REDIS_URL"] = self.redis_url
        env["Q_SECRET_KEY"] = self.secret
        for key, value in self.db.items():
            env[f"BENCH_DB_{key.upper()}"] = value
        return env


@dataclass
class Workers:
    """Worker processes started by one peer: one or more commands, each its own session."""

    processes: list[subprocess.Popen[bytes]]
    started: float
    """``time.monotonic()`` just before the first command was launched."""
    logs: list[Path]
    started_wall: float = 0.0
    """``time.time()`` at the same moment (tasks' own clocks are wall clocks)."""

    @property
    def pids(self) -> list[int]:
        """The pids of the launched commands (their children are found through /proc)."""
        return [p.pid for p in self.processes]

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.processes)


class Peer:
    """One configuration of one queue library. Subclasses set the class attributes."""

    name: ClassVar[str]
    """Short id used on the command line and in the JSON (``huey``, ``q-redis``, ...)."""
    label: ClassVar[str]
    """How the table names it."""
    is_q: ClassVar[bool] = False
    baseline_of: ClassVar[str | None] = None
    """For ``<name>@base``: the Q configuration it is the baseline of."""
    venv: ClassVar[str | None] = None
    """Directory under ``.bench/venvs``; None for Q, which runs from the workspace ``.venv``."""
    requirements: ClassVar[tuple[str, ...]] = ()
    store: ClassVar[str] = "redis"
    """Where results go: ``redis``, ``sqlite`` or ``postgres``."""
    pair: ClassVar[str] = "q-redis"
    """The Q configuration this peer is compared with."""
    workloads: ClassVar[frozenset[str]] = frozenset({"A", "A'", "B", "C", "D", "E1k", "E8"})
    """Workloads this configuration takes part in."""
    has_bulk: ClassVar[bool] = False
    task_share: ClassVar[float] = 1.0
    """Fraction of ``--tasks`` used for B and E, for a peer too slow to run them all in a
    reasonable time (its rate stays tasks per second; the table says so)."""
    quick_share: ClassVar[float] = 1.0
    """Fraction of ``--tasks`` for A, A', B and E in a ``--quick`` run, for a peer that would
    make the quick run too long (its rates stay tasks per second)."""
    stop_signal: ClassVar[int] = signal.SIGTERM
    poll_interval: ClassVar[float] = 0.02
    """How often the harness looks for results while the clock runs."""

    # ------------------------------------------------------------------ harness side

    def missing(self, ctx: Context) -> str | None:
        """Why this configuration cannot run here (None: it can)."""
        return None

    def worker_commands(self, ctx: Context, workers: int) -> list[list[str]]:
        """The library's usual command(s) to run ``workers`` worker processes."""
        raise NotImplementedError

    def bin(self, ctx: Context, script: str) -> str:
        """A console script of this peer's environment."""
        return str(Path(ctx.python).with_name(script))

    def worker_env(self, ctx: Context, workers: int) -> dict[str, str]:
        """Environment of the worker command(s)."""
        env = ctx.env()
        env["BENCH_WORKERS"] = str(workers)
        return env

    def prepare(self, ctx: Context) -> None:
        """Called on a fresh store before tasks are enqueued (e.g. migrate a database)."""

    def start_workers(
        self, ctx: Context, workers: int, tag: str, extra_env: dict[str, str] | None = None
    ) -> Workers:
        """Launch the worker command(s), each in its own session so it can be stopped whole."""
        commands = self.worker_commands(ctx, workers)
        env = {**self.worker_env(ctx, workers), **(extra_env or {})}
        processes: list[subprocess.Popen[bytes]] = []
        logs: list[Path] = []
        started_wall, started = time.time(), time.monotonic()
        for index, command in enumerate(commands):
            log = ctx.log_dir / f"{self.name}-{tag}-{index}.log"
            logs.append(log)
            with log.open("wb") as out:
                processes.append(
                    subprocess.Popen(
                        command,
                        cwd=REPO,
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        return Workers(processes=processes, started=started, logs=logs, started_wall=started_wall)

    def stop(self, workers: Workers, timeout: float = 20.0) -> None:
        """Stop the workers the way an operator would (SIGTERM), then kill what is left."""
        from tools.bench.measure import process_tree

        tree = {pid for root in workers.pids for pid in process_tree(root)}
        for proc in workers.processes:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, self.stop_signal)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + timeout
        for proc in workers.processes:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
        # A child that outlived its parent (reparented to init) is still ours to end.
        for pid in tree:
            if Path(f"/proc/{pid}").exists():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def result_probe(self, handle: Handle) -> tuple[Any, ...]:
        """A Redis command whose reply is truthy once ``handle``'s result is in the store."""
        raise NotImplementedError

    def result_watcher(self, ctx: Context) -> Any:
        """Made before tasks are enqueued; ``watcher(handles)`` counts how many of those
        tasks' results are visible in the store, ``watcher.close()`` lets go."""
        from tools.bench.measure import PrefixWatcher

        return PrefixWatcher(ctx.redis_url, self.result_probe)

    def notice_channel(self, ctx: Context) -> str | None:
        """The Redis pub/sub channel on which saved results are announced (Q only)."""
        return None

    def record_times(self, ctx: Context, handles: Sequence[Handle]) -> dict[str, float]:
        """Task id -> when it ended (epoch seconds, from the stored record), for the steady
        rate, the first task and result visibility. Empty: this library does not say."""
        return {}

    # ------------------------------------------------------------------ client side

    def client_open(self) -> None:
        """Set up the library's client (connections, app objects) in the driver process."""

    def enqueue_one(self, func: str, args: tuple[Any, ...]) -> Handle:
        """Enqueue ``func`` (``add`` or ``stamp``) with ``args`` through the public API."""
        raise NotImplementedError

    def enqueue_series(self, func: str, args: Sequence[tuple[Any, ...]]) -> list[Handle]:
        """Enqueue calls one at a time (the loop that workload A times)."""
        enqueue = self.enqueue_one
        return [enqueue(func, a) for a in args]

    def enqueue_bulk(self, func: str, args: Sequence[tuple[Any, ...]]) -> list[Handle]:
        """Enqueue many calls through the library's bulk API (only if ``has_bulk``)."""
        raise NotImplementedError(f"{self.name} has no bulk enqueue API")

    def client_close(self) -> None:
        """Release the client's connections."""
