"""Every Redis key and channel name Q uses, built in one place.

All keys of one queue share the hash tag ``{q:<queue>}``, all keys of one result namespace
``{r:<namespace>}``, all keys of one status board ``{s:<namespace>}``: each group lives in one
Redis Cluster slot, so the Lua scripts that touch several keys of a group also run on a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

from qcore import ConfigError

__all__ = ["QueueKeys", "ResultKeys", "ScheduleKeys", "StatusKeys", "check_name"]


def check_name(kind: str, name: str) -> str:
    """Refuse names that would break the key layout (hash tags are delimited by braces)."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"a {kind} name must be a non-empty string, not {name!r}")
    if any(c in name for c in "{}") or any(c.isspace() for c in name):
        raise ConfigError(f"a {kind} name may not contain braces or whitespace: {name!r}")
    return name


@dataclass(frozen=True, slots=True)
class QueueKeys:
    """The keys of one queue.

    ``queue`` (list of entries: pushed on the left, taken from the right, so the right end is
    the head; an entry is a bare id, or an id with its payload inline from a bulk enqueue),
    ``msg`` (hash id -> signed payload), ``inflight:<consumer>`` (list of ids held by a
    consumer), ``consumers`` (zset consumer -> heartbeat deadline, ms), ``attempts`` /
    ``tokens`` / ``maxatt`` (hashes id -> deliveries so far / current fencing token / per-task
    attempt limit), ``seq`` (fencing-token counter), ``delayed`` (zset id -> due time, ms),
    ``dead`` (zset id -> time of death, ms) with ``deadinfo`` (hash id -> JSON reason and
    attempts), ``reaper`` (the reaper's lock), ``fetches`` (hash consumer -> its last claim,
    so a fetch re-sent after a lost reply answers the same tasks), ``acks`` (hash consumer ->
    its last ack's answer, for the same reason), ``unrecorded`` (zset id -> time: dead letters
    a worker loss made whose Failure record is not saved yet), ``chunk:<uuid>`` (markers of
    bulk chunks), ``cancel`` (zset id -> time a running task's termination was asked, ms),
    ``chain:<id>`` (hash: a chain's links not queued yet and its state), ``iter:<id>`` (hash:
    an iteration's finished calls' records), ``unique:<key>`` (string: the id of the task
    holding a unique task's lock), ``owners`` (hash cluster id -> JSON: its host, its
    sentinel's pid and start time) with ``owners:seen`` (zset cluster id -> when it last wrote
    that, ms), ``replicated`` (the mark ``wait_replicas`` writes before ``WAIT``, see
    qredis.replication), ``shards`` (the queue's shard count, written by the first sharded
    producer or cluster, see qredis.shards), ``done`` (zset id -> until when, ms: tasks acked,
    whose deliveries fetch.lua refuses as replays until then).

    Priorities: every priority level has two lists, its ``due`` list (delayed tasks whose time
    came, and tasks given back by a consumer: they run first) and its ready list; level 0's are
    ``due`` and ``queue``, level ``p``'s ``due:<p>`` and ``queue:<p>`` (:meth:`ready`,
    :meth:`due_list`). ``levels`` (zset level -> level) lists the levels other than 0 that may
    hold tasks, ``prio`` (hash id -> level) the level of each live task not at 0, and
    ``marker`` (zset) is what an idle consumer blocks on (``BZPOPMIN``): every push of a
    ready task adds its one member.
    """

    name: str
    prefix: str
    queue: str
    msg: str
    consumers: str
    attempts: str
    tokens: str
    maxatt: str
    seq: str
    delayed: str
    dead: str
    deadinfo: str
    reaper: str
    fetches: str
    acks: str
    unrecorded: str
    cancel: str
    due: str
    levels: str
    prio: str
    marker: str
    owners: str
    owners_seen: str
    replicated: str
    shards: str
    done: str

    @classmethod
    def for_queue(cls, name: str) -> QueueKeys:
        check_name("queue", name)
        p = f"{{q:{name}}}"
        return cls(
            name=name,
            prefix=p,
            queue=f"{p}:queue",
            msg=f"{p}:msg",
            consumers=f"{p}:consumers",
            attempts=f"{p}:attempts",
            tokens=f"{p}:tokens",
            maxatt=f"{p}:maxatt",
            seq=f"{p}:seq",
            delayed=f"{p}:delayed",
            dead=f"{p}:dead",
            deadinfo=f"{p}:deadinfo",
            reaper=f"{p}:reaper",
            fetches=f"{p}:fetches",
            acks=f"{p}:acks",
            unrecorded=f"{p}:unrecorded",
            cancel=f"{p}:cancel",
            due=f"{p}:due",
            levels=f"{p}:levels",
            prio=f"{p}:prio",
            marker=f"{p}:marker",
            owners=f"{p}:owners",
            owners_seen=f"{p}:owners:seen",
            replicated=f"{p}:replicated",
            shards=f"{p}:shards",
            done=f"{p}:done",
        )

    def ready(self, priority: int = 0) -> str:
        """The ready list of one priority level (fetch.lua builds the same names)."""
        return self.queue if priority == 0 else f"{self.queue}:{priority}"

    def due_list(self, priority: int = 0) -> str:
        """The due list of one priority level: run before its ready list."""
        return self.due if priority == 0 else f"{self.due}:{priority}"

    def chain(self, chain_id: str) -> str:
        """The hash of one chain: its links not queued yet and where it is."""
        return f"{self.prefix}:chain:{chain_id}"

    def iter(self, iter_id: str) -> str:
        """The hash of one iteration: index -> the signed record of that call."""
        return f"{self.prefix}:iter:{iter_id}"

    def unique(self, key: str) -> str:
        """The lock of a unique task's key: the id of the task holding it."""
        return f"{self.prefix}:unique:{key}"

    def inflight(self, consumer: str) -> str:
        """The in-flight list of one consumer."""
        return f"{self.prefix}:inflight:{consumer}"

    def chunk(self, marker: str) -> str:
        """The marker of one enqueue_many chunk (makes a re-sent chunk a no-op for an hour)."""
        return f"{self.prefix}:chunk:{marker}"


@dataclass(frozen=True, slots=True)
class ResultKeys:
    """The keys of one result namespace: a record per id, a name -> id index, a channel."""

    namespace: str
    prefix: str
    channel: str

    @classmethod
    def for_namespace(cls, namespace: str) -> ResultKeys:
        check_name("result namespace", namespace)
        p = f"{{r:{namespace}}}"
        return cls(namespace=namespace, prefix=p, channel=f"{p}:done")

    def record(self, task_id: str) -> str:
        """Where earlier versions kept one task's record (still read)."""
        return f"{self.prefix}:id:{task_id}"

    def records(self, derived_name: str) -> str:
        """The records of the tasks whose ids give this humanized name (``qcore.humanize``)."""
        return f"{self.prefix}:r:{derived_name}"

    def name(self, name: str) -> str:
        return f"{self.prefix}:name:{name}"


@dataclass(frozen=True, slots=True)
class StatusKeys:
    """The keys of one status board: a value per cluster and a zset registry scored by expiry."""

    namespace: str
    prefix: str
    registry: str

    @classmethod
    def for_namespace(cls, namespace: str) -> StatusKeys:
        check_name("status namespace", namespace)
        p = f"{{s:{namespace}}}"
        return cls(namespace=namespace, prefix=p, registry=f"{p}:clusters")

    def cluster(self, cluster_id: str) -> str:
        return f"{self.prefix}:cluster:{cluster_id}"


@dataclass(frozen=True, slots=True)
class ScheduleKeys:
    """The schedules of one queue, under the queue's hash tag (a firing is queued in the same
    script that advances its schedule): ``schedules`` (set of ids), ``sched:<id>`` (hash: signed
    definition, revision, repeats, index, last task and due time), ``sched:<id>:fired`` (zset of
    the due times fired), and the due-time indexes (zset id -> due ms): ``schedules:due`` for
    schedules any cluster fires, ``schedules:due:<cluster>`` for those pinned to a cluster name.
    """

    prefix: str
    all: str
    due: str

    @classmethod
    def for_queue(cls, name: str) -> ScheduleKeys:
        check_name("queue", name)
        p = f"{{q:{name}}}"
        return cls(prefix=p, all=f"{p}:schedules", due=f"{p}:schedules:due")

    def index(self, cluster: str | None) -> str:
        """The due-time index of schedules pinned to ``cluster`` (None: any cluster)."""
        if cluster is None:
            return self.due
        return f"{self.due}:{check_name('cluster', cluster)}"

    def schedule(self, schedule_id: str) -> str:
        return f"{self.prefix}:sched:{schedule_id}"

    def fired(self, schedule_id: str) -> str:
        return f"{self.prefix}:sched:{schedule_id}:fired"
