"""dramatiq: Redis broker + Redis results (``dramatiq tools.bench.peers.tasks.dramatiq_app``)."""

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends.redis import RedisBackend
from tools.bench.peers.tasks import common

URL = os.environ["BENCH_REDIS_URL"]
broker = RedisBroker(url=URL)
backend = RedisBackend(url=URL)
broker.add_middleware(Results(backend=backend))
dramatiq.set_broker(broker)


@dramatiq.actor(store_results=True)
def add(a, b):
    return common.add(a, b)


@dramatiq.actor(store_results=True)
def stamp(enqueued):
    common.stamp(enqueued)
