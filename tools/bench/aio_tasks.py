"""Tasks of tools/bench/tasks_ab.py (importable by dotted path in the workers)."""

from __future__ import annotations

import asyncio

from qdjango.tasks_api import task


def add(a: int, b: int) -> int:
    return a + b


@task
def djadd(a: int, b: int) -> int:
    return a + b


async def aadd(a: int, b: int) -> int:
    """The ``async def`` no-op (part 3)."""
    return a + b


async def nap(seconds: float) -> None:
    """Awaits ``seconds`` (part 3: 1,000 of them at 0.1 s)."""
    await asyncio.sleep(seconds)
