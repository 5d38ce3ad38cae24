"""Release rehearsal, producer side: one task through a cluster, from a venv without Django.

    python smoke_redis.py REDIS_URL QUEUE [--no-rich]

Run by rehearse.sh inside a fresh virtual environment that installed ``qtq-redis`` (or
``qtq-cluster``) by name from the local index; a ``qcluster run`` from the worker's
environment consumes QUEUE. Signs with ``$Q_SECRET_KEY``, as the cluster does.
"""

from __future__ import annotations

import importlib.util
import sys

from qredis import Producer


def main(url: str, queue: str, *, no_rich: bool) -> None:
    absent = ["django", "rich"] if no_rich else ["django"]
    present = [name for name in absent if importlib.util.find_spec(name) is not None]
    assert not present, f"installed although nothing here depends on them: {present}"
    producer = Producer(url, queue, namespace=queue)
    task_id = producer.enqueue("math.copysign", 2, -1)
    value = producer.result(task_id, wait=60)
    assert value == -2.0, f"task {task_id}: result {value!r}, expected -2.0"
    record = producer.fetch(task_id)
    assert record is not None and record.success, record
    print(f"smoke: {queue}: math.copysign(2, -1) = {value} (task {task_id})")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], no_rich="--no-rich" in sys.argv[3:])
