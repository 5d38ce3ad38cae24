"""celery: Redis broker + Redis result backend (``celery -A tools.bench.peers.tasks.celery_app
worker``)."""

import os

from celery import Celery
from tools.bench.peers.tasks import common

URL = os.environ["BENCH_REDIS_URL"]
app = Celery("bench", broker=URL, backend=URL)
app.conf.update(broker_connection_retry_on_startup=True)


@app.task
def add(a, b):
    return common.add(a, b)


@app.task
def stamp(enqueued):
    common.stamp(enqueued)
