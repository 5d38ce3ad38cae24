"""Runs the workloads on Q and the peers, side by side on one private Redis.

    uv run python -m tools.bench [--quick] [--only NAMES] [--skip NAMES] [--workloads A,B,...]
                                 [--runs 3] [--tasks 10000]

Each run measures every selected configuration in turn (runs interleave, so a slow moment of
the machine touches every library alike). Per configuration and run:

- A   enqueue ``--tasks`` calls one at a time (client side, in the library's own venv);
- A'  the same through the bulk API, where the library has one;
- B   ``--tasks`` calls enqueued first, then the workers started (2 processes): the clock runs
      from the launch of the worker command to the last result visible in the store;
- D   then, with the workers idle, the PSS of the worker command's process tree;
- C   then ``--latency-tasks`` calls sent ``--interval`` apart: start - enqueue, inside the task;
- E1k B with 1 kB of arguments; E8 B with 8 workers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.bench import measure, report, services, venvs
from tools.bench.peers.base import REPO, Context, Peer, Workers
from tools.bench.peers.tasks.common import LATENCY_KEY
from tools.bench.registry import ORDER, load

__all__ = ["main"]

BENCH_DIR = REPO / ".bench"
WORKLOADS = ("A", "A'", "B", "C", "D", "E1k", "E8")
QUICK_SUBJECTS = ("q-redis", "q-django-sqlite", "huey", "djq2-sqlite", "bare")


class MeasureError(RuntimeError):
    """One measurement failed; the run goes on and the table shows it."""


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
            data = self.drive(peer, ctx, action, self.options.tasks)
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
    ) -> None:
        """B and E: pre-enqueue, start the workers, clock to the last result."""
        ctx = self.fresh_store(peer, f"{metric}{run}")
        running: Workers | None = None
        watcher = peer.result_watcher(ctx)
        try:
            tasks = max(10, round(self.options.tasks * peer.task_share))
            handles = self.prefill(peer, ctx, tasks, arg_bytes)
            running = peer.start_workers(ctx, workers, f"{metric}-run{run}")
            first, finished = self.wait_results(peer, watcher, handles, running, metric)
            rate = len(handles) / (finished - running.started)
            self.record(peer.name, metric, rate)
            self.record(peer.name, f"{metric}_first", first - running.started)
            print(
                f"    {metric:4} {rate:12,.0f} tasks/s ({len(handles):,} tasks; first result "
                f"{first - running.started:.2f} s after launch)",
                flush=True,
            )
            if then is not None:
                then(ctx, running)
        finally:
            watcher.close()
            if running is not None:
                peer.stop(running)
            self.drop_store(ctx)

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
        """C: tasks sent ``interval`` apart to idle workers; start - enqueue in the task."""
        client = self.redis.client()
        try:
            client.delete(LATENCY_KEY)
            count = self.options.latency_tasks
            self.drive(peer, ctx, "latency", count + 1)
            measure.wait_until(
                lambda: client.llen(LATENCY_KEY) >= count,
                timeout=60,
                interval=0.05,
                what=f"{count} start-latency samples",
            )
            samples = [float(v) * 1000 for v in client.lrange(LATENCY_KEY, 0, -1)]
        finally:
            client.close()
        p50, p99 = measure.percentile(samples, 50), measure.percentile(samples, 99)
        self.record(peer.name, "C_p50", p50)
        self.record(peer.name, "C_p99", p99)
        print(f"    C    p50 {p50:7.2f} ms  p99 {p99:7.2f} ms", flush=True)

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


# ---------------------------------------------------------------------- set-up


def parse(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m tools.bench",
        description="Benchmark Q against huey, dramatiq, arq, celery, django-q2, rq and a bare "
        "Redis loop, side by side on one private redis-server.",
    )
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1 run, 1,000 tasks, 50 latency samples, "
                        f"{', '.join(QUICK_SUBJECTS)} (other flags still apply)")  # fmt: skip
    parser.add_argument("--only", help="comma-separated configurations (default: all)")
    parser.add_argument("--skip", help="comma-separated configurations to leave out")
    parser.add_argument("--workloads", help=f"comma-separated, from {','.join(WORKLOADS)}")
    parser.add_argument("--runs", type=int, help="repetitions (default 3; quick 1)")
    parser.add_argument("--tasks", type=int, help="tasks per A/B/E (default 10000; quick 1000)")
    parser.add_argument("--latency-tasks", type=int, help="C samples (default 200; quick 50)")
    parser.add_argument("--interval", type=float, default=0.02, help="C spacing, seconds")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--many-workers", type=int, default=8, help="workers for E8")
    parser.add_argument("--arg-bytes", type=int, default=1024, help="argument size for E1k")
    parser.add_argument("--timeout", type=float, help="seconds allowed per measurement")
    parser.add_argument("--json", type=Path, help="also write the JSON here")
    parser.add_argument("--list", action="store_true", help="list configurations and exit")
    parser.add_argument("--keep-logs", action="store_true", help="keep worker logs")
    args = parser.parse_args(argv)
    if args.list:
        for name in ORDER:
            peer = load(name)
            print(f"{name:16} {peer.label}  [{' '.join(sorted(peer.workloads))}]")
        raise SystemExit(0)

    quick = args.quick
    subjects = list(QUICK_SUBJECTS if quick and not args.only else ORDER)
    if args.only:
        subjects = [s.strip() for s in args.only.split(",") if s.strip()]
    if args.skip:
        skipped = {s.strip() for s in args.skip.split(",")}
        subjects = [s for s in subjects if s not in skipped]
    unknown = [s for s in subjects if s not in ORDER]
    if unknown:
        parser.error(f"unknown configuration(s) {', '.join(unknown)}; known: {', '.join(ORDER)}")
    workloads = list(WORKLOADS)
    if args.workloads:
        workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
        bad = [w for w in workloads if w not in WORKLOADS]
        if bad:
            parser.error(f"unknown workload(s) {', '.join(bad)}; known: {', '.join(WORKLOADS)}")
    tasks = args.tasks or (1000 if quick else 10_000)
    if tasks < 10:
        parser.error("--tasks must be at least 10")
    return Options(
        subjects=subjects,
        workloads=workloads,
        runs=args.runs or (1 if quick else 3),
        tasks=tasks,
        latency_tasks=args.latency_tasks or (50 if quick else 200),
        interval=args.interval,
        workers=args.workers,
        many_workers=args.many_workers,
        arg_bytes=args.arg_bytes,
        timeout=args.timeout or max(120.0, tasks / 40),
        json_copy=args.json,
        keep_logs=args.keep_logs,
    )


def install(subjects: list[str]) -> tuple[dict[str, str], dict[str, list[str]], list[str]]:
    """Each peer's venv (made or reused) and Q's workspace interpreter; what is installed."""
    pythons: dict[str, str] = {}
    frozen: dict[str, list[str]] = {}
    usable: list[str] = []
    workspace = REPO / ".venv" / "bin" / "python"
    for name in subjects:
        peer = load(name)
        try:
            if peer.venv is None:
                if not workspace.exists():
                    raise SystemExit("the workspace has no .venv: run `uv sync` first")
                python = str(workspace)
                key = "workspace"
            else:
                python = venvs.ensure(BENCH_DIR / "venvs", peer.venv, peer.requirements)
                key = peer.venv
            if key not in frozen:
                frozen[key] = venvs.freeze(python)
                extra = [REPO / "tools" / "bench"]
                if peer.venv is None:
                    extra += sorted((REPO / "packages").glob("*/src"))
                venvs.byte_compile(python, extra)
        except subprocess.CalledProcessError as exc:
            print(f"  ! {name}: install failed ({exc}); left out", flush=True)
            continue
        pythons[name] = python
        usable.append(name)
    return pythons, frozen, usable


def main(argv: list[str] | None = None) -> int:
    options = parse(argv)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    BENCH_DIR.mkdir(exist_ok=True)
    log_dir = BENCH_DIR / "logs" / stamp
    log_dir.mkdir(parents=True)

    print(f"Q bench {stamp}: {', '.join(options.subjects)}", flush=True)
    print(f"  workloads {','.join(options.workloads)}; {options.runs} run(s); "
          f"{options.tasks:,} tasks; {options.workers} workers", flush=True)  # fmt: skip
    print("Installing peers (uv, .bench/venvs):", flush=True)
    pythons, frozen, subjects = install(options.subjects)
    notes: list[str] = []
    probe_redis = f"redis://127.0.0.1:{services.free_port()}/0"  # never contacted
    for name in list(subjects):
        peer = load(name)
        reason = peer.missing(Context(probe_redis, BENCH_DIR, log_dir, pythons[name]))
        if reason:
            notes.append(f"{name} left out: {reason}")
            subjects.remove(name)
    if any(load(s).store == "postgres" for s in subjects):
        reason = services.pg_available()
        if reason:
            notes.append(f"PostgreSQL configurations left out: {reason}")
            subjects = [s for s in subjects if load(s).store != "postgres"]
    for note in notes:
        print(f"  ! {note}", flush=True)
    options.subjects = subjects

    redis = services.BenchRedis().start()
    bench = Bench(options=options, redis=redis, log_dir=log_dir, pythons=pythons)
    started = time.time()
    try:
        print(f"Private redis-server {redis.version()} on port {redis.port}", flush=True)
        for run in range(1, options.runs + 1):
            print(f"Run {run}/{options.runs}", flush=True)
            if "A'" in options.workloads:
                bench.reference()
            for name in subjects:
                peer = load(name)
                print(f"  {name}: {peer.label}", flush=True)
                bench.measure_subject(peer, run)
    except KeyboardInterrupt:
        notes.append("interrupted: partial results")
        print("\ninterrupted: writing what was measured", flush=True)
    finally:
        redis_version = redis.version() if redis.process and redis.process.poll() is None else ""
        redis.close()

    document = report.build(
        options=options.__dict__,
        subjects=subjects,
        results=bench.results,
        errors=bench.errors,
        details=bench.details,
        notes=notes,
        meta={
            "started": stamp,
            "seconds": round(time.time() - started, 1),
            "python": sys.version.split()[0],
            "redis_server": redis_version,
            "cpus": os.cpu_count(),
            "installed": frozen,
            "logs": str(log_dir),
        },
    )
    print()
    print(report.render(document))
    path = BENCH_DIR / f"results-{stamp}.json"
    path.write_text(json.dumps(document, indent=2, default=str))
    latest = BENCH_DIR / "results-latest.json"
    shutil.copyfile(path, latest)
    print(f"\nTook {document['meta']['seconds']:.0f} s.")
    print(f"JSON: {path}\n      (copy: {latest})")
    if options.json_copy:
        options.json_copy.write_text(json.dumps(document, indent=2, default=str))
        print(f"      (copy: {options.json_copy})")
    if not options.keep_logs and not bench.errors:
        shutil.rmtree(log_dir, ignore_errors=True)
    elif bench.errors:
        print(f"Worker logs and tracebacks of the failures: {log_dir}")
    return 0
