"""The client side of one measurement, run by a peer's own interpreter.

    <peer python> -m tools.bench.driver --peer NAME --action series|bulk|latency --n N --out F

Opens the library's client, enqueues one untimed warm-up task (connections, imports, lazy
set-up), then times the action and writes ``{"elapsed", "count", "handles"}`` as JSON to F.
``handles`` (warm-up first) are what the harness needs to find each task's result.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from tools.bench.registry import load


def task_args(count: int, arg_bytes: int) -> list[tuple[Any, ...]]:
    if arg_bytes:
        half = arg_bytes // 2
        return [("x" * half, "y" * (arg_bytes - half))] * count
    return [(i, i) for i in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--peer", required=True)
    parser.add_argument("--action", choices=["series", "bulk", "latency"], required=True)
    parser.add_argument("--n", type=int, required=True, help="tasks, warm-up included")
    parser.add_argument("--arg-bytes", type=int, default=0)
    parser.add_argument("--interval", type=float, default=0.02, help="latency: seconds apart")
    parser.add_argument("--out", required=True)
    options = parser.parse_args()
    if options.n < 2:
        parser.error("--n must be at least 2 (one warm-up task, then the measured ones)")

    peer = load(options.peer)
    peer.client_open()
    args = task_args(options.n, options.arg_bytes)
    handles = [peer.enqueue_one("add", args[0])]
    timed = args[1:]
    if options.action == "series":
        start = time.perf_counter()
        handles += peer.enqueue_series("add", timed)
        elapsed = time.perf_counter() - start
    elif options.action == "bulk":
        start = time.perf_counter()
        handles += peer.enqueue_bulk("add", timed)
        elapsed = time.perf_counter() - start
    else:
        enqueue = peer.enqueue_one
        start = time.perf_counter()
        for index in range(len(timed)):
            pause = start + index * options.interval - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            handles.append(enqueue("stamp", (time.time(),)))
        elapsed = time.perf_counter() - start
    peer.client_close()
    if len(handles) != options.n:
        raise SystemExit(f"{options.peer}: {len(handles)} handles for {options.n} tasks")
    with open(options.out, "w") as out:
        json.dump({"elapsed": elapsed, "count": len(timed), "handles": handles}, out)


if __name__ == "__main__":
    main()
