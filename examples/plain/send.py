"""Send tasks to a plain-Python cluster and wait for their results.

Run ``qcluster run --import tasks`` in this folder first; both read ``$Q_REDIS_URL`` and sign
with ``$Q_SECRET_KEY``. ``tests/docs/test_docs_examples.py`` runs both.
"""

# --8<-- [start:send]
import os

from qredis import Producer

producer = Producer(os.environ.get("Q_REDIS_URL", "redis://127.0.0.1:6379/0"))

task_id = producer.enqueue("tasks.resize", 1920, 1080, hook="tasks.report")
print(producer.result(task_id, wait=10))  # (960, 540); None if not done within 10 s

ids = producer.enqueue_many("tasks.resize", [(800, 600), (640, 480)])
print([producer.result(i, wait=10) for i in ids])  # [(400, 300), (320, 240)]

failed = producer.enqueue("tasks.resize", "wide", 1080)
record = producer.fetch(failed, wait=10)  # the whole record: success, result, times
print(record.success, record.result.splitlines()[0])  # False TypeError: can't multiply ...
producer.close()
# --8<-- [end:send]
