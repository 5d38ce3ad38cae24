"""Tasks of tools/bench/tasks_ab.py (importable by dotted path in the workers)."""

from __future__ import annotations

from qdjango.tasks_api import task


def add(a: int, b: int) -> int:
    return a + b


@task
def djadd(a: int, b: int) -> int:
    return a + b
