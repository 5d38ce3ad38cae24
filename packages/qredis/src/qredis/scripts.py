"""Q's Lua scripts, read from the ``.lua`` files shipped beside this module.

Each file's header documents its KEYS and ARGV. Scripts are registered per client with
redis-py's ``register_script`` (EVALSHA, reloading on NOSCRIPT after a restart or flush).
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import redis
from redis.commands.core import Script

__all__ = ["SCRIPT_NAMES", "Scripts", "source"]

SCRIPT_NAMES = (
    "ack",
    "cancel",
    "chain_ack",
    "chain_start",
    "dead_admin",
    "dead_letter",
    "dead_trim",
    "drop_result",
    "enqueue",
    "enqueue_absent",
    "enqueue_unique",
    "fetch",
    "fire",
    "forget",
    "heartbeat",
    "iter_put",
    "mark_done",
    "owner",
    "remove_waiting",
    "requeue",
    "retry_later",
    "save_legacy",
    "save_results",
    "scan",
    "schedule_due",
    "schedule_many",
    "schedule_put",
    "schedule_remove",
    "status",
    "unlock",
)


# Scripts that move tasks onto the priority levels' lists share lua/lib/levels.lua, put in
# front of their own text (after the shebang line, which must stay first).
_WITH_LEVELS = frozenset({"dead_admin", "fetch", "requeue", "retry_later", "scan"})


def _read(*path: str) -> str:
    return resources.files("qredis").joinpath("lua", *path).read_text("utf-8")


@cache
def source(name: str) -> str:
    """The text of ``lua/<name>.lua`` (with the library it uses in front of it)."""
    if name not in SCRIPT_NAMES:
        raise KeyError(f"no Lua script named {name!r}")
    text = _read(f"{name}.lua")
    if name in _WITH_LEVELS:
        shebang, _, body = text.partition("\n")
        text = f"{shebang}\n{_read('lib', 'levels.lua')}\n{body}"
    if name in ("chain_ack", "chain_start", "enqueue_unique"):
        # Chains reuse ack.lua's and enqueue.lua's own bodies, as local functions run in the
        # same atomic step: a link is acked, and the next one queued, as any task is.
        functions = [("enqueue", source("enqueue").removeprefix("#!lua\n"))]
        if name == "chain_ack":
            functions.append(("ack", source("ack").removeprefix("#!lua flags=allow-oom\n")))
        prelude = "".join(
            f"local function {fn}(KEYS, ARGV)\n{body}\nend\n" for fn, body in functions
        )
        flags = "#!lua flags=allow-oom\n" if name == "chain_ack" else "#!lua\n"
        return f"{flags}{prelude}{text}"
    if name in ("fire", "enqueue_absent"):
        # A schedule's firing (and each task of an idempotent bulk) is queued by enqueue.lua's
        # own body, run as a local function in the same atomic step, so it can never be
        # queued differently from any other task.
        body = source("enqueue").removeprefix("#!lua\n")
        text = f"#!lua\nlocal function enqueue(KEYS, ARGV)\n{body}\nend\n{text}"
    return text


class Scripts:
    """Every script registered on one client (``Script`` objects are bound to a client)."""

    __slots__ = SCRIPT_NAMES

    ack: Script
    cancel: Script
    chain_ack: Script
    chain_start: Script
    dead_admin: Script
    dead_letter: Script
    dead_trim: Script
    drop_result: Script
    enqueue: Script
    enqueue_absent: Script
    enqueue_unique: Script
    fetch: Script
    fire: Script
    forget: Script
    heartbeat: Script
    iter_put: Script
    mark_done: Script
    owner: Script
    remove_waiting: Script
    requeue: Script
    retry_later: Script
    save_legacy: Script
    save_results: Script
    scan: Script
    schedule_due: Script
    schedule_many: Script
    schedule_put: Script
    schedule_remove: Script
    status: Script
    unlock: Script

    def __init__(self, client: redis.Redis) -> None:
        for name in SCRIPT_NAMES:
            setattr(self, name, client.register_script(source(name)))
