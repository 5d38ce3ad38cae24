"""The contract every ``qcore.ResultStore`` implementation must pass.

Subclass :class:`ResultStoreContract` in a ``test_*.py`` file and provide a ``store`` fixture
(a store with no records). Backend-specific behaviour (TTLs, notifications, round trips) is
tested beside the backend.
"""

from __future__ import annotations

import pickle
import time
from dataclasses import replace
from typing import Any

import pytest

from qcore.message import TaskMessage, TaskResult
from qcore.protocols import ResultStore

__all__ = ["ResultStoreContract", "record"]


def record(success: bool = True, result: Any = 42, **changes: Any) -> TaskResult:
    """A record of a new task (``changes`` replace its fields)."""
    message = TaskMessage.new("math.floor", (4.2,), {"key": "value"})
    rec = TaskResult.from_message(message, result=result, success=success)
    return replace(rec, **changes) if changes else rec


class ResultStoreContract:
    """Upserts by id, a success never replaced by a failure, names resolving to the latest."""

    @pytest.fixture
    def store(self) -> ResultStore:
        raise NotImplementedError("provide a `store` fixture")

    def test_is_a_result_store(self, store: ResultStore) -> None:
        assert isinstance(store, ResultStore)

    def test_save_and_get_by_id_and_by_name(self, store: ResultStore) -> None:
        a, b = record(result="a"), record(result={"b": [1, 2]})
        store.save_many([a, b])
        assert store.get(a.id) == a
        assert store.get(b.name) == b
        assert store.get("0" * 32) is None
        assert store.get("no-such-name") is None

    def test_saving_nothing_is_allowed(self, store: ResultStore) -> None:
        store.save_many([])

    def test_saving_twice_leaves_the_last_record(self, store: ResultStore) -> None:
        first = record(result=1)
        second = replace(first, result=2, attempt_count=2)
        store.save_many([first])
        store.save_many([second])
        assert store.get(first.id) == second

    def test_a_later_failure_never_replaces_a_success(self, store: ResultStore) -> None:
        ok = record(result="fine")
        store.save_many([ok])
        store.save_many([replace(ok, success=False, result="boom")])
        assert store.get(ok.id) == ok

    def test_a_later_success_replaces_a_failure(self, store: ResultStore) -> None:
        failed = record(success=False, result="boom")
        store.save_many([failed])
        ok = replace(failed, success=True, result="fine")
        store.save_many([ok])
        assert store.get(failed.id) == ok

    def test_a_name_resolves_to_the_latest_task(self, store: ResultStore) -> None:
        now = time.time()
        older = record(result="old", name="shared-name", started=now - 10, stopped=now - 9)
        newer = record(result="new", name="shared-name", started=now, stopped=now + 1)
        store.save_many([newer])
        store.save_many([older])  # saved last, enqueued first: the name stays with newer
        got = store.get("shared-name")
        assert got is not None and got.id == newer.id

    def test_a_pickled_store_reads_the_same_records(self, store: ResultStore) -> None:
        rec = record()
        store.save_many([rec])
        clone = pickle.loads(pickle.dumps(store))
        assert clone.get(rec.id) == rec
        clone.close()

    # -- fenced saves (issue 11, item 3) ----------------------------------------------------

    def test_a_late_save_of_a_superseded_delivery_never_replaces_the_newer_record(
        self, store: ResultStore
    ) -> None:
        newer = record(result="run again by another worker", attempt_count=2)
        late = replace(newer, result="the frozen worker's run", attempt_count=1)
        store.save_many([newer], fences=[7])
        store.save_many([late], fences=[3])  # its worker was presumed dead, then woke up
        assert store.get(newer.id) == newer
        store.save_many([replace(late, success=False)], fences=[3])
        assert store.get(newer.id) == newer

    def test_a_newer_delivery_replaces_an_older_one_s_record(self, store: ResultStore) -> None:
        first = record(result="first", success=False)
        second = replace(first, result="second", success=True)
        store.save_many([first], fences=[3])
        store.save_many([second], fences=[7])
        assert store.get(first.id) == second

    def test_an_unfenced_save_keeps_the_fence_it_replaces(self, store: ResultStore) -> None:
        fenced = record(result="fenced", success=False)
        store.save_many([fenced], fences=[7])
        unfenced = replace(fenced, result="unfenced")
        store.save_many([unfenced])
        assert store.get(fenced.id) == unfenced
        store.save_many([replace(fenced, result="late")], fences=[3])
        assert store.get(fenced.id) == unfenced
