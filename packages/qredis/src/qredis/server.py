"""Checks of a Redis server's settings that decide whether queued tasks survive."""

from __future__ import annotations

from typing import Any

import redis

__all__ = ["check_server", "reachable"]


def check_server(client: Any, where: str) -> list[str]:
    """Warnings (empty when all is well): persistence off, or an eviction policy that may
    delete queued tasks. Tolerates ``CONFIG`` being disabled or renamed (a managed Redis)."""
    warnings: list[str] = []
    try:
        config = client.config_get("appendonly")
        config.update(client.config_get("maxmemory-policy"))
    except redis.exceptions.NoPermissionError:
        return [
            f"could not check appendonly and maxmemory-policy (no permission) of Redis at "
            f"{where}: the user may not run CONFIG GET; make sure appendonly is yes and "
            "maxmemory-policy is noeviction"
        ]
    except redis.ResponseError as exc:
        return [
            f"could not check appendonly and maxmemory-policy of Redis at {where} (CONFIG is "
            f"disabled or renamed: {exc}); make sure appendonly is yes and maxmemory-policy is "
            "noeviction"
        ]
    appendonly = _text(config.get(b"appendonly", config.get("appendonly")))
    policy = _text(config.get(b"maxmemory-policy", config.get("maxmemory-policy")))
    if appendonly != "yes":
        warnings.append(
            f"Redis at {where} has appendonly={appendonly}: queued tasks written since the last "
            "snapshot are lost if Redis restarts; set appendonly yes"
        )
    if policy != "noeviction":
        warnings.append(
            f"Redis at {where} has maxmemory-policy={policy}: when memory runs out Redis may "
            "evict queued tasks; set maxmemory-policy noeviction"
        )
    return warnings


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode()
    return "<unknown>" if value is None else str(value)


def reachable(spec: Any) -> bool:
    """True when the Redis of ``spec`` (a :class:`~qredis.connection.ConnectionSpec`) answers
    a PING: one attempt of at most 2 s on a client of its own, never the pool's retries."""
    try:
        with spec.one_shot() as client:
            return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
