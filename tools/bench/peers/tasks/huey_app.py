"""huey: the app and its tasks (``huey_consumer tools.bench.peers.tasks.huey_app.huey``)."""

import os

from huey import RedisHuey
from tools.bench.peers.tasks import common

huey = RedisHuey("bench", url=os.environ["BENCH_REDIS_URL"])


@huey.task()
def add(a, b):
    return common.add(a, b)


@huey.task()
def stamp(enqueued):
    common.stamp(enqueued)
