"""The measurements of one bench run: each workload on one configuration, recorded.

See ``runner.py`` for the run loop and the options, ``tools/bench/README.md`` for what each
workload measures.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.bench import measure, records, services
from tools.bench.peers.base import REPO, Context, Peer, Workers
from tools.bench.peers.tasks.common import LATENCY_KEY

__all__ = ["BENCH_DIR", "Bench", "MeasureError", "Options", "loadavg"]

BENCH_DIR = REPO / ".bench"


def loadavg() -> float:
    """The one-minute load average: how busy the shared machine was."""
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return float("nan")


@dataclass
class Options:
    subjects: list[str]
    workloads: list[str]
    runs: int
    tasks: int
    latency_tasks: int
    interval: float
    workers: int
    many_workers: int
    arg_bytes: int
    timeout: float
    json_copy: Path | None
    keep_logs: bool
    baseline: Path | None = None
    quick: bool = False


class MeasureError(RuntimeError):
    """One measurement failed; the run goes on and the table shows it."""


@dataclass
class Bench:
    options: Options
    redis: services.BenchRedis
    log_dir: Path
    pythons: dict[str, str]
    results: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    errors: dict[str, dict[str, str]] = field(default_factory=dict)
    details: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    pg_counter: int = 0

    # ------------------------------------------------------------------ plumbing

    def task_count(self, peer: Peer) -> int:
        """``--tasks``, or the peer's share of it in a quick run."""
        share = peer.quick_share if self.options.quick else 1.0
        return max(10, round(self.options.tasks * share))

    def record(self, subject: str, metric: str, value: float) -> None:
        self.results.setdefault(subject, {}).setdefault(metric, []).append(value)

    def fail(self, subject: str, workload: str, exc: BaseException) -> None:
        message = f"{type(exc).__name__}: {exc}"
        self.errors.setdefault(subject, {})[workload] = message
        print(f"    ! {subject} {workload}: {message}", flush=True)
        detail = self.log_dir / f"{subject}-{workload}-error.txt"
        detail.write_text("".join(traceback.format_exception(exc)))

    def context(self, peer: Peer, db: dict[str, str] | None = None) -> Context:
        return Context(
            redis_url=self.redis.url,
            bench_dir=BENCH_DIR,
            log_dir=self.log_dir,
            python=self.pythons[peer.name],
            db=db or {},
        )

    def drive(
        self, peer: Peer, ctx: Context, action: str, n: int, *, arg_bytes: int = 0
    ) -> dict[str, Any]:
        """Run the client side in the peer's own interpreter; its JSON report."""
        with tempfile.NamedTemporaryFile(suffix=".json", dir=self.log_dir, delete=False) as f:
            out = Path(f.name)
        command = [
            ctx.python, "-m", "tools.bench.driver", "--peer", peer.name, "--action", action,
            "--n", str(n), "--arg-bytes", str(arg_bytes), "--interval", str(self.options.interval),
            "--out", str(out),
        ]  # fmt: skip
        env = peer.worker_env(ctx, self.options.workers)
        proc = subprocess.run(
            command, cwd=REPO, env=env, capture_output=True, text=True, timeout=self.options.timeout
        )
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
            raise MeasureError(f"driver {action} failed:\n      " + "\n      ".join(tail))
        data: dict[str, Any] = json.loads(out.read_text())
        out.unlink()
        return data

    def fresh_store(self, peer: Peer, tag: str) -> Context:
        """Empty Redis and, for a Django store, a new database (migrated)."""
        self.redis.flush()
        db: dict[str, str] = {}
        if peer.store == "sqlite":
            path = BENCH_DIR / "run" / f"{peer.name}.sqlite3"
            path.parent.mkdir(parents=True, exist_ok=True)
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            db = {"engine": "sqlite", "name": str(path)}
        elif peer.store == "postgres":
            self.pg_counter += 1
            db = services.create_pg_database(f"qbench_{os.getpid()}_{self.pg_counter}")
        ctx = self.context(peer, db)
        peer.prepare(ctx)
        return ctx

    def drop_store(self, ctx: Context) -> None:
        if ctx.db.get("engine") == "postgres":
            services.drop_pg_database(ctx.db["name"])

    def wait_results(
        self, peer: Peer, watcher: Any, handles: list[Any], workers: Workers | None, what: str
    ) -> tuple[float, float]:
        """Poll until every result is visible: when (monotonic) the first and the last were."""
        deadline = time.monotonic() + self.options.timeout
        interval = peer.poll_interval
        first = 0.0
        while True:
            done = watcher(handles)
            if done and not first:
                first = time.monotonic()
            if done >= len(handles):
                return first, time.monotonic()
            if workers is not None and not workers.alive():
                raise MeasureError(f"{what}: the worker command exited; see {workers.logs[0]}")
            if time.monotonic() > deadline:
                raise MeasureError(
                    f"{what}: {done} of {len(handles)} results after {self.options.timeout:.0f} s"
                )
            time.sleep(interval)

    # ------------------------------------------------------------------ workloads

    def enqueue(self, peer: Peer, run: int, workload: str) -> None:
        ctx = self.fresh_store(peer, f"{workload}{run}")
        try:
            action = "series" if workload == "A" else "bulk"
            data = self.drive(peer, ctx, action, self.task_count(peer))
            rate = data["count"] / data["elapsed"]
            self.record(peer.name, workload, rate)
            print(f"    {workload:4} {rate:12,.0f} tasks/s", flush=True)
        finally:
            self.drop_store(ctx)

    def prefill(self, peer: Peer, ctx: Context, n: int, arg_bytes: int) -> list[Any]:
        action = "bulk" if peer.has_bulk else "series"
        handles: list[Any] = self.drive(peer, ctx, action, n, arg_bytes=arg_bytes)["handles"]
        return handles

    def throughput(
        self,
        peer: Peer,
        run: int,
        metric: str,
        *,
        workers: int,
        arg_bytes: int = 0,
        then: Callable[[Context, Workers], None] | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        """B and E: pre-enqueue, start the workers, clock to the last result. For B on Q, the
        records also give the steady rate, the first task and result visibility."""
        ctx = self.fresh_store(peer, f"{metric}{run}")
        running: Workers | None = None
        watcher = peer.result_watcher(ctx)
        notices = self.notices(peer, ctx) if metric == "B" else None
        try:
            tasks = max(10, round(self.task_count(peer) * peer.task_share))
            handles = self.prefill(peer, ctx, tasks, arg_bytes)
            running = peer.start_workers(ctx, workers, f"{metric}-run{run}", extra_env)
            first, finished = self.wait_results(peer, watcher, handles, running, metric)
            rate = len(handles) / (finished - running.started)
            self.record(peer.name, metric, rate)
            self.record(peer.name, f"{metric}_first", first - running.started)
            print(
                f"    {metric:4} {rate:12,.0f} tasks/s ({len(handles):,} tasks; first result "
                f"{first - running.started:.2f} s after launch)",
                flush=True,
            )
            if notices is not None:
                notices.close()
                self.from_records(peer, ctx, handles, running, notices)
            if then is not None:
                then(ctx, running)
        finally:
            if notices is not None:
                notices.close()
            watcher.close()
            if running is not None:
                peer.stop(running)
            self.drop_store(ctx)

    def notices(self, peer: Peer, ctx: Context) -> measure.NoticeWatcher | None:
        channel = peer.notice_channel(ctx)
        return None if channel is None else measure.NoticeWatcher(ctx.redis_url, channel)

    def from_records(
        self,
        peer: Peer,
        ctx: Context,
        handles: list[Any],
        workers: Workers,
        notices: measure.NoticeWatcher,
    ) -> None:
        """B's steady rate, first task and result visibility, from the stored records."""
        ended = peer.record_times(ctx, handles)
        ends = [ended[h] for h in handles if h in ended]
        steady = records.steady_rate(ends)
        first = records.first_ran(ends, workers.started_wall)
        lags = notices.lags_ms({h: ended[h] for h in handles if h in ended})
        if peer.is_q and peer.store == "redis":
            size = measure.result_bytes(ctx.redis_url, len(handles))
            self.record(peer.name, "B_result_bytes", size)
            print(f"    B    {size:,.0f} bytes of Redis per result (MEMORY USAGE)", flush=True)
        if steady is not None:
            self.record(peer.name, "B_steady", steady)
        if first is not None:
            self.record(peer.name, "B_ran", first)
        parts = [f"steady {steady:,.0f} tasks/s" if steady else "steady —"]
        if first is not None:
            parts.append(f"first task ran {first:.2f} s after launch")
        if lags:
            p50, p99 = measure.percentile(lags, 50), measure.percentile(lags, 99)
            self.record(peer.name, "VB_p50", p50)
            self.record(peer.name, "VB_p99", p99)
            parts.append(f"visible p50 {p50:.2f} ms p99 {p99:.2f} ms ({len(lags):,} notices)")
        print(f"    B    {'; '.join(parts)}", flush=True)

    def idle_memory(self, peer: Peer, workers: Workers) -> None:
        """D: PSS of the worker tree, idle, a moment after the last result."""
        time.sleep(1.0)
        pids = sorted({pid for root in workers.pids for pid in measure.process_tree(root)})
        kib, counted = measure.pss_kib(pids)
        mib = kib / 1024
        self.record(peer.name, "D", mib)
        self.record(peer.name, "D_processes", counted)
        breakdown = measure.process_breakdown(pids)
        self.details.setdefault(peer.name, {}).setdefault("D", []).append(breakdown)
        print(f"    D    {mib:12.1f} MiB PSS over {counted} processes", flush=True)

    def start_latency(self, peer: Peer, ctx: Context, workers: Workers) -> None:
        """C: tasks sent ``interval`` apart to idle workers; start - enqueue in the task. For Q,
        also V: how soon each of these tasks' record was visible after it ended."""
        client = self.redis.client()
        notices = self.notices(peer, ctx)
        try:
            client.delete(LATENCY_KEY)
            count = self.options.latency_tasks
            handles = self.drive(peer, ctx, "latency", count + 1)["handles"]
            measure.wait_until(
                lambda: client.llen(LATENCY_KEY) >= count,
                timeout=60,
                interval=0.05,
                what=f"{count} start-latency samples",
            )
            samples = [float(v) * 1000 for v in client.lrange(LATENCY_KEY, 0, -1)]
            if notices is not None:
                measure.wait_until(
                    lambda: all(h in notices.arrived for h in handles),
                    timeout=30,
                    interval=0.05,
                    what="the saved notices of the start-latency tasks",
                )
                notices.close()
                ended = peer.record_times(ctx, handles)
                lags = notices.lags_ms({h: ended[h] for h in handles[1:] if h in ended})
        finally:
            if notices is not None:
                notices.close()
            client.close()
        p50, p99 = measure.percentile(samples, 50), measure.percentile(samples, 99)
        self.record(peer.name, "C_p50", p50)
        self.record(peer.name, "C_p99", p99)
        print(f"    C    p50 {p50:7.2f} ms  p99 {p99:7.2f} ms", flush=True)
        if notices is not None and lags:
            p50, p99 = measure.percentile(lags, 50), measure.percentile(lags, 99)
            self.record(peer.name, "V_p50", p50)
            self.record(peer.name, "V_p99", p99)
            print(f"    V    p50 {p50:7.2f} ms  p99 {p99:7.2f} ms (result visible - task end)")

    def warm(self, peer: Peer, ctx: Context, workers: Workers) -> None:
        """Make sure every worker is up before C when B did not run first."""
        watcher = peer.result_watcher(ctx)
        try:
            handles = self.drive(peer, ctx, "series", 2 * self.options.workers + 1)["handles"]
            self.wait_results(peer, watcher, handles, workers, "warm-up")
        finally:
            watcher.close()
        time.sleep(1.0)

    def b_c_d(self, peer: Peer, run: int) -> None:
        selected = set(self.options.workloads) & peer.workloads
        want_c, want_d = "C" in selected, "D" in selected

        def after(ctx: Context, workers: Workers) -> None:
            if want_d:
                try:
                    self.idle_memory(peer, workers)
                except Exception as exc:
                    self.fail(peer.name, "D", exc)
            if want_c:
                try:
                    self.start_latency(peer, ctx, workers)
                except Exception as exc:
                    self.fail(peer.name, "C", exc)

        if "B" in selected or want_d:
            self.throughput(peer, run, "B", workers=self.options.workers, then=after)
        elif want_c:
            ctx = self.fresh_store(peer, f"C{run}")
            running = peer.start_workers(ctx, self.options.workers, f"C-run{run}")
            try:
                self.warm(peer, ctx, running)
                after(ctx, running)
            finally:
                peer.stop(running)
                self.drop_store(ctx)

    def measure_subject(self, peer: Peer, run: int) -> None:
        selected = set(self.options.workloads) & peer.workloads
        steps: list[tuple[str, Callable[[], None]]] = []
        if "A" in selected:
            steps.append(("A", lambda: self.enqueue(peer, run, "A")))
        if "A'" in selected and peer.has_bulk:
            steps.append(("A'", lambda: self.enqueue(peer, run, "A'")))
        if selected & {"B", "C", "D"}:
            steps.append(("B", lambda: self.b_c_d(peer, run)))
        if "E1k" in selected:
            steps.append(
                ("E1k", lambda: self.throughput(
                    peer, run, "E1k", workers=self.options.workers,
                    arg_bytes=self.options.arg_bytes))
            )  # fmt: skip
        if "E8" in selected:
            steps.append(
                ("E8", lambda: self.throughput(peer, run, "E8", workers=self.options.many_workers))
            )
        if "R50" in selected:
            # B again, each worker replaced after 50 tasks (Q_RECYCLE): what recycling costs.
            steps.append(
                ("R50", lambda: self.throughput(
                    peer, run, "R50", workers=self.options.workers,
                    extra_env={"Q_RECYCLE": "50"}))
            )  # fmt: skip
        for workload, step in steps:
            try:
                step()
            except Exception as exc:
                self.fail(peer.name, workload, exc)

    def reference(self) -> None:
        """redis-benchmark LPUSH, pipelined 1000 deep, on the same server: A' reference."""
        self.redis.flush()
        try:
            rate = services.redis_benchmark(self.redis.port, max(100_000, self.options.tasks * 10))
        except Exception as exc:
            self.fail("redis-benchmark", "A'", exc)
            return
        self.record("redis-benchmark", "A'", rate)
        print(f"  redis-benchmark -t lpush -P 1000: {rate:,.0f} LPUSH/s", flush=True)
