"""RedisStatusBoard: publish with a TTL, list live clusters without KEYS, remove."""

from __future__ import annotations

import datetime
from collections.abc import Iterator

import pytest
import redis

from qcore import ConfigError, StatusBoard
from qcore.testing.contract import wait_until
from qredis import RedisStatusBoard


@pytest.fixture
def board(redis_url: str, queue_name: str) -> Iterator[RedisStatusBoard]:
    b = RedisStatusBoard(redis_url, namespace=queue_name)
    yield b
    b.close()


def test_is_a_status_board(board: RedisStatusBoard) -> None:
    assert isinstance(board, StatusBoard)


def test_publish_list_remove(board: RedisStatusBoard) -> None:
    assert board.clusters() == []
    board.publish("b-host-2", {"workers": 4, "state": "running"}, 30)
    board.publish("a-host-1", {"workers": 2, "state": "idle"}, 30)
    board.publish("a-host-1", {"workers": 2, "state": "running"}, 30)
    listed = board.clusters()
    assert [c["cluster_id"] for c in listed] == ["a-host-1", "b-host-2"]
    assert listed[0]["state"] == "running"
    board.remove("a-host-1")
    assert [c["cluster_id"] for c in board.clusters()] == ["b-host-2"]


def test_a_silent_cluster_disappears_after_its_ttl(
    board: RedisStatusBoard, redis_client: redis.Redis
) -> None:
    board.publish("gone", {"workers": 1}, 0.2)
    board.publish("stays", {"workers": 1}, 30)
    # The value's PX and the registry's score come from one TIME but round differently, so
    # for up to a millisecond the value is gone and the entry not yet due: a later look
    # prunes it. Both must happen, the registry's prune included.
    wait_until(
        lambda: (
            [c["cluster_id"] for c in board.clusters()] == ["stays"]
            and redis_client.zrange(board._keys.registry, 0, -1) == [b"stays"]
        )
    )


def test_values_json_cannot_hold_are_stored_as_text(board: RedisStatusBoard) -> None:
    when = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.UTC)
    board.publish("c", {"started": when, "pids": (1, 2)}, 30)
    [status] = board.clusters()
    assert status["started"] == str(when) and status["pids"] == [1, 2]


def test_bad_ttl(board: RedisStatusBoard) -> None:
    with pytest.raises(ConfigError, match="ttl"):
        board.publish("c", {}, 0)
