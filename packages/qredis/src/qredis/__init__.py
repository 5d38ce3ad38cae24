"""qredis: Q's reliable Redis transport, Redis result store, status board and producer."""

# Before anything of qcore's: fails with a clear message when the unrelated `qcore` library is
# installed in this environment (its qcore/__init__.py may be the one there, and fail unclearly).
import qtq_core  # noqa: F401  # isort: skip
from qredis.connection import (
    DEFAULT_URL,
    PRODUCER_RETRY_FOR,
    PRODUCER_SOCKET_TIMEOUT,
    ConnectionSpec,
    producer_kwargs,
    reset_pools,
)
from qredis.errors import (
    ReplicationTimeout,
    TransportConnectionError,
    TransportError,
    TransportOutOfMemory,
)
from qredis.inspection import Waiting
from qredis.keys import QueueKeys, ResultKeys, ScheduleKeys, StatusKeys
from qredis.keywatch import KEY_CHECK_EVERY, KeyWatch, served_queues
from qredis.notify import ResultNotifier
from qredis.placement import stored_shards
from qredis.producer import Producer
from qredis.queues import RedisQueues
from qredis.results import DEFAULT_RESULT_TTL, RedisResultStore
from qredis.schedules import Firing, RedisSchedules, Stored
from qredis.server import check_server
from qredis.sharded_queues import ShardedQueues
from qredis.shards import ShardedQueue
from qredis.status import RedisStatusBoard
from qredis.transport import RedisTransport

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_RESULT_TTL",
    "DEFAULT_URL",
    "KEY_CHECK_EVERY",
    "PRODUCER_RETRY_FOR",
    "PRODUCER_SOCKET_TIMEOUT",
    "ConnectionSpec",
    "Firing",
    "KeyWatch",
    "Producer",
    "QueueKeys",
    "RedisQueues",
    "RedisResultStore",
    "RedisSchedules",
    "RedisStatusBoard",
    "RedisTransport",
    "ReplicationTimeout",
    "ResultKeys",
    "ResultNotifier",
    "ScheduleKeys",
    "ShardedQueue",
    "ShardedQueues",
    "StatusKeys",
    "Stored",
    "TransportConnectionError",
    "TransportError",
    "TransportOutOfMemory",
    "Waiting",
    "__version__",
    "check_server",
    "producer_kwargs",
    "reset_pools",
    "served_queues",
    "stored_shards",
]
