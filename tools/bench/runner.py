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
- E1k B with 1 kB of arguments; E8 B with 8 workers; R50 B with recycle=50 (Q only).

For Q, B also yields the steady rate, the first task's start and result visibility (from the
stored records and the stores' "saved" notices), and C the visibility under light load.
``--baseline DIR`` measures every selected Q configuration a second time, from another
checkout's ``.venv`` (``<name>@base``), in the same run: before and after side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tools.bench import report, services, venvs
from tools.bench.peers.base import REPO, Context
from tools.bench.registry import BASELINE, ORDER, Q_NAMES, load
from tools.bench.workloads import BENCH_DIR, Bench, Options, loadavg

__all__ = ["main"]

WORKLOADS = ("A", "A'", "B", "C", "D", "E1k", "E8", "R50")
QUICK_SUBJECTS = ("q-redis", "q-django-sqlite", "q-django-pg", "huey", "djq2-sqlite", "bare")
QUICK_WORKLOADS = ("A", "A'", "B", "C", "D")
QUICK = "1 run, 10,000 tasks, 100 latency samples, workloads A, A', B, C, D"


# ---------------------------------------------------------------------- set-up


def parse(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m tools.bench",
        description="Benchmark Q against huey, dramatiq, arq, celery, django-q2, rq and a bare "
        "Redis loop, side by side on one private redis-server.",
    )
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: {QUICK}, configurations "
                        f"{', '.join(QUICK_SUBJECTS)} (other flags still apply)")  # fmt: skip
    parser.add_argument("--only", help="comma-separated configurations (default: all)")
    parser.add_argument("--skip", help="comma-separated configurations to leave out")
    parser.add_argument("--workloads", help=f"comma-separated, from {','.join(WORKLOADS)}")
    parser.add_argument("--runs", type=int, help="repetitions (default 3; quick 1)")
    parser.add_argument("--tasks", type=int, help="tasks per A/B/E (default 10000)")
    parser.add_argument("--latency-tasks", type=int, help="C samples (default 200; quick 100)")
    parser.add_argument("--interval", type=float, default=0.02, help="C spacing, seconds")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--many-workers", type=int, default=8, help="workers for E8")
    parser.add_argument("--arg-bytes", type=int, default=1024, help="argument size for E1k")
    parser.add_argument("--timeout", type=float, help="seconds allowed per measurement")
    parser.add_argument("--json", type=Path, help="also write the JSON here")
    parser.add_argument("--list", action="store_true", help="list configurations and exit")
    parser.add_argument("--keep-logs", action="store_true", help="keep worker logs")
    parser.add_argument(
        "--baseline", type=Path, help="another checkout with a .venv: its Q too, as <name>@base"
    )
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
    workloads = list(QUICK_WORKLOADS if quick else WORKLOADS)
    if args.workloads:
        workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
        bad = [w for w in workloads if w not in WORKLOADS]
        if bad:
            parser.error(f"unknown workload(s) {', '.join(bad)}; known: {', '.join(WORKLOADS)}")
    tasks = args.tasks or 10_000
    if tasks < 10:
        parser.error("--tasks must be at least 10")
    if args.baseline is not None:
        python = args.baseline / ".venv" / "bin" / "python"
        if not python.exists():
            parser.error(f"--baseline {args.baseline}: no {python} (run `uv sync` there)")
        subjects = [x for s in subjects for x in ([s, s + BASELINE] if s in Q_NAMES else [s])]
    return Options(
        subjects=subjects,
        workloads=workloads,
        runs=args.runs or (1 if quick else 3),
        tasks=tasks,
        latency_tasks=args.latency_tasks or (100 if quick else 200),
        interval=args.interval,
        workers=args.workers,
        many_workers=args.many_workers,
        arg_bytes=args.arg_bytes,
        timeout=args.timeout or max(120.0, tasks / 40),
        json_copy=args.json,
        keep_logs=args.keep_logs,
        baseline=args.baseline,
        quick=quick,
    )


def install(
    subjects: list[str], baseline: Path | None = None
) -> tuple[dict[str, str], dict[str, list[str]], list[str]]:
    """Each peer's venv (made or reused) and Q's workspace interpreter; what is installed."""
    pythons: dict[str, str] = {}
    frozen: dict[str, list[str]] = {}
    usable: list[str] = []
    workspace = REPO / ".venv" / "bin" / "python"
    for name in subjects:
        peer = load(name)
        try:
            if name.endswith(BASELINE) and baseline is not None:
                python = str(baseline / ".venv" / "bin" / "python")
                key = "baseline"
                frozen[key] = venvs.freeze(python)
                venvs.byte_compile(python, sorted((baseline / "packages").glob("*/src")))
            elif peer.venv is None:
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
    pythons, frozen, subjects = install(options.subjects, options.baseline)
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
    load_start = loadavg()
    try:
        print(f"Private redis-server {redis.version()} on port {redis.port}", flush=True)
        for run in range(1, options.runs + 1):
            print(f"Run {run}/{options.runs}", flush=True)
            if "A'" in options.workloads:
                bench.reference()
            for name in subjects:
                peer = load(name)
                load_now = loadavg()
                bench.details.setdefault(name, {}).setdefault("loadavg", []).append(load_now)
                print(f"  {name}: {peer.label} (load average {load_now:.2f})", flush=True)
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
            "loadavg": {"start": load_start, "end": loadavg()},
            "commit": _commit(REPO),
            "baseline": str(options.baseline) if options.baseline else None,
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


def _commit(repo: Path) -> str:
    """The measured checkout's commit, with "+dirty" when it has uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")
