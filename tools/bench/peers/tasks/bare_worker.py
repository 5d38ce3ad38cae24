"""The bare loop: LPUSH -> BRPOP -> call -> SET. No acks, no signing, no retries.

``python -m tools.bench.peers.tasks.bare_worker --workers 2`` forks that many children, each
looping on BRPOP; the parent waits and passes SIGTERM on. The message is a plain pickle of
``(task_id, dotted_path, args)``; the result is ``SET bare:result:<id>`` to a pickle.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pickle
import signal
import sys

import redis

QUEUE = "bare:queue"
RESULT = "bare:result:"


def resolve(path: str):
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def work(url: str) -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    client = redis.Redis.from_url(url)
    funcs: dict[str, object] = {}
    while True:
        item = client.brpop([QUEUE], timeout=1)
        if item is None:
            continue
        task_id, path, args = pickle.loads(item[1])
        func = funcs.get(path)
        if func is None:
            func = funcs[path] = resolve(path)
        client.set(RESULT + task_id, pickle.dumps(func(*args)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=2)
    options = parser.parse_args()
    url = os.environ["BENCH_REDIS_URL"]
    children = []
    for _ in range(options.workers):
        pid = os.fork()
        if pid == 0:
            try:
                work(url)
            finally:
                os._exit(0)
        children.append(pid)

    def forward(signum, _frame):
        for child in children:
            try:
                os.kill(child, signum)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for child in children:
        while True:
            try:
                os.waitpid(child, 0)
                break
            except InterruptedError:
                continue
            except ChildProcessError:
                break


if __name__ == "__main__":
    main()
