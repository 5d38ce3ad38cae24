"""When a change of the workers' states is worth publishing at once (the beacon's watch).

The beacon glances at every worker's slot 20 times a second. Publishing each difference would
cost a busy cluster five publications a second (the most ``MIN_GAP`` allows) of a status that
is stale a millisecond later: with tasks of a millisecond, which task runs changes between any
two glances. So a change is published when it *held* for one glance (about 50 ms: a live view,
refreshed every 0.25 s, could have seen it), in one of two forms:

- **fine**: each worker's state and task, as glanced (a task that runs for a while, a worker
  that went idle and stays idle);
- **coarse**: each worker's activity, where a worker is active while its state is running,
  saving or calling a hook, or when it finished a task since the last glance (a worker
  that ran a flood of short tasks is active throughout, even when a glance found it fetching).

A flood of short tasks then publishes once when it starts and once when it ends, and the
``status_interval`` publications in between; a change that held is on the board within
``2 * WATCH + MIN_GAP`` seconds (0.3 s). The cost on tools/bench's workload B: README,
'Status on change'.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import NamedTuple

from qcluster.states import WorkerState

__all__ = ["Glance", "StateWatch"]

_BUSY = frozenset({int(WorkerState.RUNNING), int(WorkerState.SAVING), int(WorkerState.HOOK)})
_ACTIVE = -1


class Glance(NamedTuple):
    """One worker's slot at a glance (no consistent copy: a torn one is corrected by the next
    glance)."""

    worker: Hashable
    """Which worker (its index and pid: a replaced worker is a new one)."""
    state: int
    task_id: bytes
    processed: int


Look = tuple[tuple[Hashable, ...], tuple[Hashable, ...]]


class StateWatch:
    """Tells, at each glance, whether the workers' states changed in a way that held."""

    def __init__(self, glances: Callable[[], Sequence[Glance]]) -> None:
        self.glances = glances
        self._done: dict[Hashable, int] = {}
        self._last: Look | None = None
        self._published: Look | None = None

    def look(self) -> bool:
        """Glance at the workers; True when a change held since the last glance and is not
        what was published last."""
        glances = self.glances()
        done, self._done = self._done, {g.worker: g.processed for g in glances}
        fine = tuple((g.worker, g.state, g.task_id) for g in glances)
        coarse = tuple(
            (
                g.worker,
                _ACTIVE
                if g.state in _BUSY or done.get(g.worker, g.processed) != g.processed
                else g.state,
            )
            for g in glances
        )
        last, self._last = self._last, (coarse, fine)
        if last is None:
            return False
        published = self._published or ((), ())
        held_coarse = coarse == last[0] and coarse != published[0]
        held_fine = fine == last[1] and fine != published[1]
        return held_coarse or held_fine

    def published(self) -> None:
        """The status was just published: what the last glance saw is what the board shows."""
        self._published = self._last
