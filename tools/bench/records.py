"""What Q's stored records tell: the steady rate, when the first task ran, how soon results
were visible. Every figure comes from the records' own ``stopped`` times (the worker's clock
at each task's end), so the harness's polling interval never blurs it."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["STEADY_SPAN", "first_ran", "steady_rate"]

STEADY_SPAN = (0.1, 0.9)
"""The steady rate is measured between the tasks that ended at these fractions of the run:
start-up (imports, forks, the first small batches) and the last stragglers are left out."""


def steady_rate(ends: Sequence[float]) -> float | None:
    """Tasks per second between the 10th and the 90th percentile of the end times."""
    if len(ends) < 20:
        return None
    ordered = sorted(ends)
    low = int(len(ordered) * STEADY_SPAN[0])
    high = int(len(ordered) * STEADY_SPAN[1]) - 1
    span = ordered[high] - ordered[low]
    return (high - low) / span if span > 0 else None


def first_ran(ends: Sequence[float], launched: float) -> float | None:
    """Seconds from the worker command's launch to the end of the first task (a no-op: its
    start is microseconds earlier)."""
    return min(ends) - launched if ends else None
