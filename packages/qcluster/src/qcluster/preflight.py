"""Before a cluster starts its workers: reach its servers, check what they let it do, and warn
about settings that could lose tasks.

A cluster that cannot reach Redis says so at once, one line per backoff step (never a silent
wait inside redis-py's retries), and starts its workers only once Redis answered, so
``cluster.started`` means it really can run tasks. With ``fail_fast`` it gives up at the first
failure instead (for deployments that restart a failed process themselves). A server that
answers but denies a command Q needs (a Redis ACL user without ``EVALSHA``, say) stops the
start with one error naming everything missing: waiting would not help.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from qcluster.errors import ClusterError
from qcore import Backoff, ConfigError, Preflight

__all__ = ["BACKOFF", "preflight"]

BACKOFF = Backoff(first=0.5, cap=10.0)
"""Between two attempts to reach an unreachable Redis."""


def preflight(
    parts: Sequence[tuple[str, object]],
    *,
    fail_fast: bool,
    log: Any,
    sleep: Callable[[float], bool],
) -> bool:
    """Check each ``(name, part)`` that implements :class:`qcore.Preflight`.

    ``sleep(seconds)`` waits between attempts and returns True when the cluster was asked to
    stop meanwhile. Returns False when it was (nothing started), True when every server
    answered and allows what the cluster needs. Raises :class:`ClusterError` for missing
    permissions, and with ``fail_fast`` for a server that cannot be reached.
    """
    checked = [(name, part) for name, part in parts if isinstance(part, Preflight)]
    failures = 0
    while True:
        try:
            missing, warnings = _ask(checked)
            break
        except ConfigError as exc:  # a queue sharded otherwise in Redis (qredis.shards)
            raise ClusterError(str(exc)) from None
        except ConnectionError as exc:
            if fail_fast:
                raise ClusterError(f"{exc} (fail_fast is set: not retrying)") from None
            failures += 1
            wait = BACKOFF.delay(failures)
            log.error("redis.unreachable", error=str(exc), retry_in=round(wait, 1))
            if sleep(wait):
                return False
    if missing:
        raise ClusterError(
            "the Redis user may not do what the cluster needs: "
            + "; ".join(f"{name}: {', '.join(items)}" for name, items in missing)
            + ". Grant it (docs/deployment/redis.md has the minimal ACL rule) and start again"
        )
    for name, warning in warnings:
        log.warning("redis.settings", part=name, detail=warning)
    return True


def _ask(
    checked: Sequence[tuple[str, Preflight]],
) -> tuple[list[tuple[str, list[str]]], list[tuple[str, str]]]:
    missing: list[tuple[str, list[str]]] = []
    warnings: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name, part in checked:
        denied = part.check_permissions()
        if denied:
            missing.append((name, denied))
    if missing:  # refused: nothing more is asked, and nothing written (check_server may write)
        return missing, warnings
    for name, part in checked:
        if name == "transport":  # the queue's server: the one whose settings decide
            for warning in part.check_server():
                if warning not in seen:
                    seen.add(warning)
                    warnings.append((name, warning))
    return missing, warnings
