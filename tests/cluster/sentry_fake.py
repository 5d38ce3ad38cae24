"""A Sentry transport for tests, on sentry-sdk's own Transport API: each event goes to a Redis
list (``$Q_TEST_SENTRY`` = ``<redis url> <key>``) instead of the network, from any process."""

from __future__ import annotations

import json
import os

import redis
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

DSN = "https://public@sentry.invalid/1"


class RedisListTransport(Transport):
    def capture_envelope(self, envelope: Envelope) -> None:
        event = envelope.get_event()
        if event is None:
            return
        url, key = os.environ["Q_TEST_SENTRY"].split()
        client = redis.Redis.from_url(url)
        try:
            client.rpush(key, json.dumps(event, default=repr))
        finally:
            client.close()


def events(url: str, key: str) -> list[dict]:
    client = redis.Redis.from_url(url)
    try:
        return [json.loads(raw) for raw in client.lrange(key, 0, -1)]
    finally:
        client.close()
