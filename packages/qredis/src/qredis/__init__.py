"""qredis: Q's reliable Redis transport, Redis result store, status board and producer."""

from qredis.broker import RedisBroker
from qredis.connection import DEFAULT_URL, ConnectionSpec, reset_pools
from qredis.errors import BrokerConnectionError, BrokerError, BrokerOutOfMemory
from qredis.keys import QueueKeys, ResultKeys, StatusKeys
from qredis.notify import ResultNotifier
from qredis.producer import Producer
from qredis.results import DEFAULT_RESULT_TTL, RedisResultStore
from qredis.secret import FALLBACKS_ENV, SECRET_ENV, codec_for
from qredis.server import check_server
from qredis.status import RedisStatusBoard

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_RESULT_TTL",
    "DEFAULT_URL",
    "FALLBACKS_ENV",
    "SECRET_ENV",
    "BrokerConnectionError",
    "BrokerError",
    "BrokerOutOfMemory",
    "ConnectionSpec",
    "Producer",
    "QueueKeys",
    "RedisBroker",
    "RedisResultStore",
    "RedisStatusBoard",
    "ResultKeys",
    "ResultNotifier",
    "StatusKeys",
    "__version__",
    "check_server",
    "codec_for",
    "reset_pools",
]
