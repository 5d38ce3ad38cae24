"""Which of the commands, keys and channels Q needs a Redis user is denied, asked before a
cluster starts.

A Redis ACL user that lacks one command Q needs (``EVALSHA``, ``BZPOPMIN``, or a command a Lua
script calls: a script runs as its caller) would otherwise fail the first time that path runs:
mid-task, on a retry, at a worker's death. The check asks Redis without running anything:
each command is sent inside ``MULTI`` (Redis checks permissions when it queues a command, and
answers ``NOPERM`` there), then ``DISCARD``. One round trip per key group.

:func:`acl_rule` is the least a user needs; the docs ship it, and a test applies it to a real
server and runs a cluster as that user.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from qcore import get_logger
from qredis.scripts import SCRIPT_NAMES, source

__all__ = [
    "KEYLESS_COMMANDS",
    "KEY_COMMANDS",
    "PYTHON_COMMANDS",
    "Probe",
    "acl_rule",
    "missing_permissions",
    "script_commands",
]

KEY_COMMANDS: dict[str, tuple[str, ...]] = {
    "DEL": (),
    "EXISTS": (),
    "EXPIRE": ("1",),
    "GET": (),
    "GETRANGE": ("0", "0"),
    "HDEL": ("f",),
    "HEXISTS": ("f",),
    "HGET": ("f",),
    "HGETALL": (),
    "HINCRBY": ("f", "1"),
    "HLEN": (),
    "HMGET": ("f",),
    "HSET": ("f", "v"),
    "HSETNX": ("f", "v"),
    "HVALS": (),
    "INCRBY": ("1",),
    "LLEN": (),
    "LPOS": ("v",),
    "LPUSH": ("v",),
    "LRANGE": ("0", "0"),
    "LREM": ("0", "v"),
    "MGET": (),
    "PEXPIRE": ("1",),
    "RPOP": (),
    "RPUSH": ("v",),
    "SADD": ("m",),
    "SET": ("v",),
    "SMEMBERS": (),
    "SREM": ("m",),
    "ZADD": ("1", "m"),
    "ZCARD": (),
    "ZMSCORE": ("m",),
    "ZRANGE": ("0", "0"),
    "ZRANGEBYSCORE": ("0", "1"),
    "ZREM": ("m",),
    "ZREMRANGEBYRANK": ("0", "0"),
    "ZREMRANGEBYSCORE": ("0", "1"),
    "ZREVRANGE": ("0", "0"),
    "ZSCORE": ("m",),
}
"""Commands that take one key first, with arguments that make a valid call after it."""

KEYLESS_COMMANDS: tuple[tuple[str, ...], ...] = (
    ("PING",),
    ("TIME",),
    ("SCRIPT", "LOAD", "return 1"),
)
"""Commands without keys, as probed (a script calling a command in neither table is a test
failure: see ``packages/qredis/tests/test_permissions.py``)."""

PYTHON_COMMANDS = frozenset(
    {"GET", "SET", "DEL", "EXISTS", "HMGET", "LLEN", "LRANGE", "MGET", "ZCARD", "ZRANGE"}
    | {"ZREVRANGE", "ZREMRANGEBYSCORE", "ZREM", "PUBLISH"}
    | {"HGET", "SMEMBERS", "ZSCORE", "ZMSCORE"}
)
"""Key commands qredis sends itself, outside its scripts (the reaper's lock, inspection,
schedule listings)."""

OTHER_COMMANDS = (
    "evalsha",
    "script|load",
    "bzpopmin",
    "multi",
    "exec",
    "discard",
    "subscribe",
    "unsubscribe",
    "ping",
    "time",
    "select",
    "config|get",
)
"""Commands without keys or outside the probe's MULTI (``config|get`` is optional: without
it a cluster cannot check ``appendonly`` and says so, then runs)."""


def acl_rule(password: str = "<password>") -> str:
    """The least an ``ACL SETUSER <user> ...`` rule must grant a cluster: its keys (the
    ``{q:``, ``{r:`` and ``{s:`` hash tags), the result channel, and each command by name."""
    commands = sorted(c.lower() for c in script_commands() | PYTHON_COMMANDS)
    grants = " ".join(f"+{c}" for c in dict.fromkeys([*commands, *OTHER_COMMANDS]))
    return f"on >{password} resetkeys ~{{q:* ~{{r:* ~{{s:* resetchannels &{{r:* -@all {grants}"


log = get_logger("qredis.permissions")

_CALL = re.compile(r"redis\.call\(\s*['\"]([A-Za-z]+)['\"]")


def script_commands(names: Iterable[str] = SCRIPT_NAMES) -> frozenset[str]:
    """Every command the shipped Lua scripts call (a script runs with its caller's ACL)."""
    return frozenset(m.upper() for name in names for m in _CALL.findall(source(name)))


@dataclass(frozen=True)
class Probe:
    """What one part of Q (transport, result store, status board) needs: keys of its hash tag
    (``key`` is any key under it), channels, and commands beyond the ones its scripts call."""

    key: str
    channels: Sequence[str] = ()
    commands: Sequence[str] = ()
    blocking_list: bool = False

    def calls(self) -> list[tuple[str, ...]]:
        """Commands to queue inside MULTI: valid calls that would touch only ``key``."""
        names = sorted(script_commands() | PYTHON_COMMANDS | {c.upper() for c in self.commands})
        names.remove("PUBLISH")  # its argument is a channel: probed with the channels below
        keyless = {call[0] for call in KEYLESS_COMMANDS}
        calls: list[tuple[str, ...]] = [
            (name,) if name in keyless else (name, self.key, *KEY_COMMANDS.get(name, ()))
            for name in names
        ]
        calls += [("EVALSHA", "0" * 40, "1", self.key)]
        calls += [call for call in KEYLESS_COMMANDS if call[0] not in names]
        if self.blocking_list:
            calls.append(("BZPOPMIN", self.key, "1"))
        calls += [("PUBLISH", channel, "") for channel in self.channels]
        return calls


def missing_permissions(client: redis.Redis, probe: Probe) -> list[str]:
    """What the client's user may not do of ``probe``, e.g. ``["BZPOPMIN", "keys {q:*"]``;
    empty when everything is allowed (always, on a Redis without ACLs). Runs nothing.

    Connection errors are raised as redis-py's (the caller wraps them); a server that does
    not know a command (an old Redis) reports it as missing too.
    """
    client.ping()  # unreachable: the caller hears it here, as a connection error
    calls = [("MULTI",), *probe.calls(), ("DISCARD",)]
    try:
        return _probe(client, calls, probe)
    except redis.TimeoutError as exc:
        # It answered PING but not the probe: writes are paused (CLIENT PAUSE WRITE holds
        # even a command queued in MULTI). Not a reason to keep a cluster from starting.
        log.warning("redis.permissions_unchecked", error=str(exc), detail="no answer in time")
        return []


def _probe(client: redis.Redis, calls: list[tuple[str, ...]], probe: Probe) -> list[str]:
    conn: Any = client.connection_pool.get_connection()
    try:
        conn.send_packed_command(conn.pack_commands(calls))
        replies: list[Any] = []
        for _ in calls:
            try:
                replies.append(conn.read_response())
            except redis.ResponseError as exc:
                replies.append(exc)
    except BaseException:
        conn.disconnect()
        raise
    finally:
        client.connection_pool.release(conn)
    if isinstance(replies[0], redis.ResponseError):
        return [_name(("MULTI",), replies[0])]
    missing: list[str] = []
    for call, reply in zip(calls[1:-1], replies[1:-1]):
        if isinstance(reply, redis.ResponseError):
            what = _name(call, reply)
            if what not in missing:
                missing.append(what)
    missing.sort()
    missing += _channels_missing(client, probe.channels)
    return missing


def _name(call: tuple[str, ...], error: redis.ResponseError) -> str:
    """How one refusal is reported: the command, or the key or channel it could not touch."""
    text = str(error)
    if "keys" in text and len(call) > 1:
        return f"keys {_pattern(call[1])} ({call[0]})"
    if "channel" in text and len(call) > 1:
        return f"channel {call[1]} ({call[0]})"
    name = " ".join(call[:2]) if call[0] in ("SCRIPT", "CONFIG") else call[0]
    return name if "permission" in text.lower() else f"{name} ({text})"


def _pattern(key: str) -> str:
    """``{q:default}:queue`` -> ``{q:*``, the pattern an ACL rule would grant."""
    return key[: key.index(":") + 1] + "*" if key.startswith("{") and ":" in key else key


def _channels_missing(client: redis.Redis, channels: Sequence[str]) -> list[str]:
    """SUBSCRIBE cannot be queued in MULTI: a short-lived subscription asks instead."""
    if not channels:
        return []
    pubsub = client.pubsub()  # type: ignore[no-untyped-call]
    try:
        pubsub.subscribe(*channels)
        pubsub.get_message(timeout=1.0)  # the confirmation, or the refusal raised here
        pubsub.unsubscribe()
        return []
    except redis.ResponseError as exc:
        return [f"channel {' '.join(channels)} (SUBSCRIBE: {exc})"]
    finally:
        pubsub.close()
