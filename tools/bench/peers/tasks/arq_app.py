"""arq: coroutine tasks and worker settings (``arq ...arq_app.WorkerSettings``)."""

import os
import time

from arq.connections import RedisSettings
from tools.bench.peers.tasks.common import LATENCY_KEY

REDIS = RedisSettings.from_dsn(os.environ["BENCH_REDIS_URL"])


async def add(ctx, a, b):
    return a + b


async def stamp(ctx, enqueued):
    started = time.time()
    await ctx["redis"].rpush(LATENCY_KEY, repr(started - enqueued))


class WorkerSettings:
    functions = [add, stamp]
    redis_settings = REDIS
    poll_delay = 0.01


# Per-job INFO lines are off for every library in the bench (see README): WARNING and above.
LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler", "level": "WARNING"}},
    "loggers": {"arq": {"handlers": ["stderr"], "level": "WARNING"}},
}
