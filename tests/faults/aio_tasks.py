"""``async def`` tasks of the fault suite (importable by worker processes): they count their
runs and announce their start like the sync ones in ``tasks``, then await."""

from __future__ import annotations

import asyncio
import time

from tests.faults.tasks import client, effect, started


async def nap(url: str, key: str, tag: str, seconds: float) -> str:
    """Counts its run, notes when it started and ended (``<key>:spans``), sleeps between."""
    effect(url, key, tag)
    begun = time.time()
    await asyncio.sleep(seconds)
    client(url).rpush(f"{key}:spans", f"{begun} {time.time()}")
    return tag


async def hang_first_time(url: str, key: str, tag: str) -> int:
    """Awaits for a minute on its first run (until the test kills the worker), returns on the
    next."""
    runs = effect(url, key, tag)
    if runs == 1:
        started(url, key)
        await asyncio.sleep(60)
    return runs


async def fail(url: str, key: str, tag: str) -> None:
    effect(url, key, tag)
    await asyncio.sleep(0)
    raise RuntimeError(f"async failure {tag}")


async def announced_nap(url: str, key: str, tag: str, seconds: float) -> str:
    """Counts its run, announces its start (``Effects.wait_started``), sleeps, returns its
    tag."""
    effect(url, key, tag)
    started(url, key)
    await asyncio.sleep(seconds)
    return tag


async def block_first_time(url: str, key: str, tag: str) -> str:
    """On its first run announces its start and blocks its loop in sync code for a minute
    (until its worker is killed); returns its tag on the next."""
    if effect(url, key, tag) == 1:
        started(url, key)
        time.sleep(60)
    return tag
