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
_WITH_LEVELS = frozenset({"chain_ack", "dead_admin", "fetch", "requeue", "retry_later", "scan"})

# Scripts that run other scripts' own bodies as local functions in the same atomic step, so a
# task they queue is queued exactly as enqueue.lua queues any task (its priority level, the
# marker an idle consumer wakes on), and a link acked as ack.lua acks any task.
_RUNS_BODIES = {
    "chain_ack": ("enqueue", "ack"),
    "chain_start": ("enqueue",),
    "enqueue_absent": ("enqueue",),
    "enqueue_unique": ("enqueue",),
    "fire": ("enqueue",),
}


def _read(*path: str) -> str:
    return resources.files("qredis").joinpath("lua", *path).read_text("utf-8")


def _split(name: str) -> tuple[str, str]:
    """``lua/<name>.lua``'s shebang line (``#!lua`` when the file has none) and the rest."""
    text = _read(f"{name}.lua")
    if text.startswith("#!"):
        shebang, _, body = text.partition("\n")
        return shebang, body
    return "#!lua", text


@cache
def source(name: str) -> str:
    """The text of ``lua/<name>.lua``, with the library and the bodies it runs in front of it
    (after its shebang line, which must stay first)."""
    if name not in SCRIPT_NAMES:
        raise KeyError(f"no Lua script named {name!r}")
    shebang, text = _split(name)
    parts = [shebang]
    if name in _WITH_LEVELS:
        parts.append(_read("lib", "levels.lua"))
    for fn in _RUNS_BODIES.get(name, ()):
        body = source(fn).partition("\n")[2]
        parts.append(f"local function {fn}(KEYS, ARGV)\n{body}\nend")
    parts.append(text)
    return "\n".join(parts)


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
