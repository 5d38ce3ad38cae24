"""RedisResultStore: task records in Redis with a TTL, found by id or name; notified waits."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import redis

from qcore import Codec, ConfigError, PayloadError, TaskResult, codec_for, get_logger, humanize
from qredis.connection import Connector, redis_errors
from qredis.keys import ResultKeys
from qredis.notify import ResultNotifier
from qredis.scripts import Scripts

__all__ = ["DEFAULT_RESULT_TTL", "RedisResultStore"]

DEFAULT_RESULT_TTL = 7 * 24 * 3600

log = get_logger("qredis.results")


class RedisResultStore:
    """Implements ``qcore.ResultStore`` on Redis.

    Each record is signed (``codec``; by default derived from ``$Q_SECRET_KEY``, in its
    compact layout) and kept ``ttl`` seconds after its last save under
    ``{r:<namespace>}:r:<name>``, the humanized name derived from its id: one key finds a
    record by id (the name is computed) and by that name, with no index. A task given a name
    of its own (``task_name``) also gets an index ``{r:<namespace>}:name:<name>`` -> its id.
    :meth:`save_many` is one Lua call that also publishes the saved ids, which is what wakes
    :meth:`wait`. Records saved under ``{r:<namespace>}:id:<id>`` by earlier versions are
    still read.
    Connection parameters as for :class:`~qredis.transport.RedisTransport`.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        connection: redis.Redis | None = None,
        pool: redis.ConnectionPool | None = None,
        namespace: str = "default",
        ttl: float = DEFAULT_RESULT_TTL,
        codec: Codec | None = None,
        **redis_kwargs: Any,
    ) -> None:
        if not ttl > 0:
            raise ConfigError(f"ttl must be a positive number of seconds, not {ttl!r}")
        self._keys = ResultKeys.for_namespace(namespace)
        self.ttl = float(ttl)
        self.codec = codec if codec is not None else codec_for()
        self._conn = Connector(url, connection=connection, pool=pool, redis_kwargs=redis_kwargs)
        self._scripts: tuple[Any, Scripts] | None = None

    @property
    def namespace(self) -> str:
        return self._keys.namespace

    @property
    def notifier(self) -> ResultNotifier:
        """The notifier over this store's connection."""
        return ResultNotifier._from_connector(self._conn, self._keys.namespace)

    def _ready(self) -> tuple[Any, Scripts]:
        client = self._conn.client
        if self._scripts is None or self._scripts[0] is not client:
            self._scripts = (client, Scripts(client))
        return self._scripts

    def save_many(
        self, results: Sequence[TaskResult], *, fences: Sequence[int] | None = None
    ) -> None:
        """Upsert records by id in one round trip. A record never replaces one saved with a
        higher fence (``fences``: per record, the fencing token of the delivery that ran it);
        then a failure never replaces a success."""
        if not results:
            return
        if self.codec.write_version == 1:
            self._save_legacy(results)  # Q 0.1's layout has no room for a fence
            return
        keys: list[str] = []
        args: list[Any] = [round(self.ttl * 1000), self._keys.channel]
        for n, record in enumerate(results):
            if not isinstance(record, TaskResult):
                raise TypeError(f"save_many takes TaskResult records, not {type(record).__name__}")
            derived = humanize(record.id)
            records_key = self._keys.records(derived)
            if record.name == derived:
                # No name index to write: the script reads no start time (see save_results.lua).
                keys += (records_key, records_key)
                started = "0"
            else:
                keys += (records_key, self._keys.name(record.name))
                started = repr(float(record.started))
            args += (
                record.id,
                raw_id(record.id),
                "1" if record.success else "0",
                started,
                self.codec.encode_compact(record),
                _fence(fences, n),
            )
        _, scripts = self._ready()
        with redis_errors(self._conn.display):
            scripts.save_results(keys, args)

    def _save_legacy(self, results: Sequence[TaskResult]) -> None:
        """Q 0.1's layout (a key per id, an index per name), for its producers to read while
        a rolling upgrade pins this codec to wire version 1."""
        keys: list[str] = []
        args: list[Any] = [round(self.ttl * 1000), self._keys.channel]
        for record in results:
            if not isinstance(record, TaskResult):
                raise TypeError(f"save_many takes TaskResult records, not {type(record).__name__}")
            keys += (self._keys.record(record.id), self._keys.name(record.name))
            args += (
                record.id,
                "1" if record.success else "0",
                repr(float(record.started)),
                self.codec.encode(record),
            )
        _, scripts = self._ready()
        with redis_errors(self._conn.display):
            scripts.save_legacy(keys, args)

    def get(self, task_id: str) -> TaskResult | None:
        """The record for an id or a humanized name (the most recent for a name), or None."""
        if looks_like_id(task_id):
            return self._by_id(task_id)
        client, _ = self._ready()
        with redis_errors(self._conn.display):
            pipe = client.pipeline(transaction=False)
            pipe.get(self._keys.records(task_id))
            pipe.get(self._keys.name(task_id))
            stored, indexed = pipe.execute()
        found = [r for r in self._entries(stored, task_id, None) if r.name == task_id]
        if indexed is not None:
            other = self._by_id(indexed.split(b" ", 1)[1].decode())
            if other is not None and other.name == task_id:
                found.append(other)
        return max(found, key=lambda r: r.started, default=None)

    def _by_id(self, task_id: str) -> TaskResult | None:
        client, _ = self._ready()
        with redis_errors(self._conn.display):
            pipe = client.pipeline(transaction=False)
            pipe.get(self._keys.records(humanize(task_id)))
            pipe.get(self._keys.record(task_id))  # saved by an earlier version
            stored, legacy = pipe.execute()
        found = self._entries(stored, task_id, raw_id(task_id))
        if found:
            return found[0]
        return None if legacy is None else self._decode(legacy[1:], task_id)

    def _entries(self, stored: bytes | None, what: str, raw_id: bytes | None) -> list[TaskResult]:
        return records_in(self.codec, stored, what, raw_id)

    def _decode(self, data: bytes, what: str) -> TaskResult:
        return decode_record(self.codec, data, what)

    def wait(self, task_id: str, timeout: float | None) -> TaskResult | None:
        """The record, waiting up to ``timeout`` seconds for it to be saved (None or negative:
        forever). Woken by the notice :meth:`save_many` publishes, not by polling."""
        is_name = not looks_like_id(task_id)
        return self.notifier.wait_for(
            task_id, timeout, lambda: self.get(task_id), any_message=is_name
        )

    def delete(self, task_id: str) -> bool:
        """Delete the record of one id (a name index entry expires with its TTL)."""
        client, scripts = self._ready()
        with redis_errors(self._conn.display):
            dropped = scripts.drop_result(
                (self._keys.records(humanize(task_id)),), (raw_id(task_id),)
            )
            return bool(client.delete(self._keys.record(task_id))) or bool(dropped)

    def check_permissions(self) -> list[str]:
        """What the Redis user may not do that this object needs (its keys, channels and
        commands); empty when all is allowed. Runs nothing; one attempt (see
        :class:`qcore.Preflight`)."""
        from qredis.permissions import Probe, missing_permissions

        key = self._keys.record("probe")
        with redis_errors(self._conn.display), self._conn.spec.one_shot(key=key) as client:
            return missing_permissions(
                client, Probe(self._keys.record("probe"), channels=(self._keys.channel,))
            )

    def reachable(self) -> bool:
        """True when Redis answers now: one quick attempt (see :class:`qcore.Preflight`)."""
        from qredis.server import reachable

        return reachable(self._conn.spec)

    def check_server(self) -> list[str]:
        """Warnings about the server's settings (see :func:`qredis.check_server`)."""
        from qredis.server import check_server

        key = self._keys.record("probe")
        with redis_errors(self._conn.display), self._conn.spec.one_shot(key=key) as client:
            return check_server(client, self._conn.display)

    def close(self) -> None:
        """Give back the connection pool this store opened."""
        self._conn.close()
        self._scripts = None

    def __getstate__(self) -> dict[str, Any]:
        return {
            "namespace": self._keys.namespace,
            "ttl": self.ttl,
            "codec": self.codec,
            "conn": self._conn,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._keys = ResultKeys.for_namespace(state["namespace"])
        self.ttl = state["ttl"]
        self.codec = state["codec"]
        self._conn = state["conn"]
        self._scripts = None

    def __repr__(self) -> str:
        return f"RedisResultStore(namespace={self.namespace!r}, url={self._conn.display!r})"


def records_in(
    codec: Codec, stored: bytes | None, what: str, only: bytes | None = None
) -> list[TaskResult]:
    """The records of a records key's value (only the one whose id's bytes are ``only``)."""
    out: list[TaskResult] = []
    pos = 0
    while stored is not None and pos + _ENTRY.size <= len(stored):
        flag, entry_id, size = _ENTRY.unpack_from(stored, pos)
        start = pos + _ENTRY.size
        if flag in _FENCED:  # the fence sits between the id and the length
            size = _FENCED_SIZE.unpack_from(stored, start + 6)[0]
            start += 8
        if only is None or entry_id == only:
            record = decode_record(codec, stored[start : start + size], what)
            if raw_id(record.id) == entry_id:  # signed: an entry cannot claim another id
                out.append(record)
        pos = start + size
    return out


def decode_record(codec: Codec, data: bytes, what: str) -> TaskResult:
    """A stored record, verified; an unreadable one is logged and raised."""
    try:
        return codec.decode_result(data)
    except PayloadError as exc:
        log.error("result.unreadable", task_id=what, error=str(exc))
        raise


_ENTRY = struct.Struct(">c16sH")
"""An entry's head in a records key: success ("1"/"0"), the id's 16 bytes, the record's
length (see lua/save_results.lua); for a fenced record ("S"/"F"), 8 bytes of fence come
between the id and the length."""
_FENCED = (b"S", b"F")
_FENCED_SIZE = struct.Struct(">H")


def _fence(fences: Sequence[int] | None, n: int) -> int:
    if fences is None:
        return 0
    fence = fences[n]
    if isinstance(fence, bool) or not isinstance(fence, int) or fence < 0:
        raise TypeError(f"a fence is a fencing token (an int >= 0), not {fence!r}")
    return fence


def raw_id(task_id: str) -> bytes:
    """The id's 16 bytes (a task id is 32 hex digits); any other text, hashed to 16 bytes."""
    try:
        return bytes.fromhex(task_id) if len(task_id) == 32 else _hashed(task_id)
    except ValueError:
        return _hashed(task_id)


def _hashed(text: str) -> bytes:
    import hashlib

    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def looks_like_id(value: str) -> bool:
    return len(value) == 32 and all(c in "0123456789abcdef" for c in value)
