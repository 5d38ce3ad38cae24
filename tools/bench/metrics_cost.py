"""What a cluster's metrics cost a worker per task: instructions, metrics off and on.

    valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
        .venv/bin/python tools/bench/metrics_cost.py off|on|settled N

One process runs N queued ``operator.add`` tasks through the worker's own code (``join()`` on
the in-memory transport and store: the ``Processor`` a worker runs, without Redis), with the
event bus of a cluster that has no ``metrics_port`` (``off``) or one (``on``: the
``MetricsRecorder`` subscribed, counting into its table). Run it under cachegrind for two values
of N and divide the difference of the counts by the difference of N: start-up and imports
cancel out. The heap is frozen and a batch flushed once, as in a worker (see worker_cost.py).
``settled``: the recorder's batch handler alone, N times on one batch's ``TasksSettled`` (32
plain runs of ``operator.add``, as run here): divide by 32 for its instructions per task.
"""

from __future__ import annotations

import gc
import os
import sys

os.environ.setdefault("Q_SECRET_KEY", "metrics-cost-benchmark-secret-0123456789")

from qcluster import processing
from qcluster.cluster import codec_from_env
from qcluster.inprocess import join
from qcluster.metrics import MetricsRecorder
from qcore import EventBus, enqueue_many
from qcore.events import TasksSettled
from qcore.testing import MemoryResultStore, MemoryTransport


def main() -> None:
    mode, n = sys.argv[1], int(sys.argv[2])
    if mode not in ("off", "on", "settled"):
        raise SystemExit("usage: metrics_cost.py off|on|settled N")
    codec = codec_from_env()
    transport, store, bus = MemoryTransport(), MemoryResultStore(), EventBus()
    if mode == "on":
        MetricsRecorder("default").subscribe(bus)
    processing.FLUSH_AFTER = 10.0
    if mode == "settled":
        batches: list[TasksSettled] = []
        bus.subscribe(TasksSettled, batches.append)
        enqueue_many(transport, codec, "operator.add", [(i, i) for i in range(32)])
        join(transport, store, codec=codec, events=bus)
        recorder = MetricsRecorder("default")
        gc.collect()
        gc.freeze()
        for _ in range(n):
            recorder.settled(batches[0])
        return
    enqueue_many(transport, codec, "operator.add", [(i, i) for i in range(n)])
    gc.collect()
    gc.freeze()
    join(transport, store, codec=codec, events=bus)


if __name__ == "__main__":
    main()
